"""The whole DAG, run locally by `python -m workflows.baseline run`, against a real vLLM server:
readiness, tokenizer (the model's own local directory), load, aggregate, report with a verdict,
and the upload to the real SeaweedFS S3 server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.fixtures.s3 import S3Server
from tests.fixtures.vllm import VllmServer
from workflows.baseline import main

pytestmark = [pytest.mark.vllm, pytest.mark.s3, pytest.mark.timeout(1800)]

DURATION_S = 20


def test_run_vllm_target_completes_dag_with_verdict(
    vllm_server: VllmServer,
    s3_env: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "vllm"
    argv = ["run", "--out", str(out), "--duration", str(DURATION_S)]
    argv += ["--base-url", vllm_server.base_url, "--model-name", vllm_server.model_name]
    argv += ["--tokenizer", str(vllm_server.tokenizer_dir), "--k8s-check", "off"]
    argv += ["--num-workers", "2", "--bucket", s3_env.bucket, "--path", "ci/vllm"]
    argv += ["--s3-endpoint-url", s3_env.endpoint_url]

    code = main(argv, dict(os.environ))

    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "phase: Succeeded" in stdout
    verdict = next(line for line in stdout.splitlines() if line.startswith("verdict: "))
    assert verdict in ("verdict: pass", "verdict: fail")
    records = pq.read_table(out / "artifacts" / "load" / "records" / "records.parquet")
    assert records.num_rows == DURATION_S  # 1 QPS, the baseline rate
    assert set(records.column("status").to_pylist()) == {"ok"}
    summary = json.loads((out / "artifacts" / "aggregate" / "summary" / "summary.json").read_text())
    tokens = summary["overall"]["tokens"]
    assert tokens["prompt_tokens_source"] == {"server": DURATION_S}
    assert (tokens["prompt_tokens_mean"], tokens["output_tokens_mean"]) == (512, 128)
    assert (out / "artifacts" / "report" / "report-html" / "report.html").is_file()
    listing = s3_env.client().list_objects_v2(Bucket=s3_env.bucket, Prefix="ci/vllm/")
    keys = [o["Key"] for o in listing.get("Contents", [])]
    assert any(k.endswith("report.html") for k in keys), keys
