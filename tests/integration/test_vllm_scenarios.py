"""The saturation scenario (S2), shortened, as its own WorkflowTemplate run locally by
`python -m workflows.baseline run --scenario saturation` against a real vLLM server: the stages
and length distributions reach the load through the template's parameters, vLLM counts the
prompts, and the report reads the stages by rate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.fixtures.vllm import VllmServer
from workflows.baseline import main

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


def test_vllm_saturation_scenario_short_runs_its_stages_with_distributed_lengths(
    vllm_server: VllmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s2"
    argv = ["run", "--scenario", "saturation", "--out", str(out), "--stages", "1x6,2x6"]
    argv += ["--input-mean", "128", "--input-std-dev", "32", "--input-min", "64"]
    argv += ["--input-max", "256", "--output-mean", "24", "--output-std-dev", "6"]
    argv += ["--output-min", "8", "--output-max", "48", "--num-workers", "2"]
    argv += ["--base-url", vllm_server.base_url, "--model-name", vllm_server.model_name]
    argv += ["--tokenizer", str(vllm_server.tokenizer_dir), "--k8s-check", "off", "--bucket", ""]

    code = main(argv, dict(os.environ))

    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "phase: Succeeded" in stdout
    records = pq.read_table(out / "artifacts" / "load" / "records" / "records.parquet")
    assert records.num_rows == 6 + 12
    assert set(records.column("status").to_pylist()) == {"ok"}
    # Exact as the server counts them, per request, and spread as the distribution asks.
    served = records.column("prompt_tokens").to_pylist()
    assert served == records.column("requested_input_tokens").to_pylist()
    assert 64 <= min(served) < max(served) <= 256
    assert set(records.column("prompt_tokens_source").to_pylist()) == {"server"}
    verdict = json.loads(next(out.glob("artifacts/report/**/verdict.json")).read_text())
    assert [s["rate"] for s in verdict["capacity"]["stages"]] == [1, 2]
    assert [s["rate"] for s in verdict["stage_sla"]] == [1, 2]
