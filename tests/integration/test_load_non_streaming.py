"""api.streaming false end to end against the simulator: each answer is one JSON body, so a
record has its e2e (the body's end) and no first token; aggregate leaves TTFT/ITL/TPOT null and
the report says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from steps.report.__main__ import main as report_main
from tests.fixtures.simulator import SimulatorHandle

StartSimulator = Any


def _config(path: Path, api_type: str) -> Path:
    path.write_text(
        f"api: {{type: {api_type}, streaming: false}}\n"
        "data:\n"
        "  input_distribution: {type: fixed, mean: 64, std_dev: 0, min: 64, max: 64}\n"
        "  output_distribution: {type: fixed, mean: 20, std_dev: 0, min: 20, max: 20}\n"
        "load: {type: constant, stages: [{rate: 5, duration: 2}], num_workers: 2}\n"
        "server: {base_url: 'http://unused:1', model_name: Qwen/Qwen3-8B}\n"
    )
    return path


@pytest.mark.parametrize("api_type", ["completion", "chat"])
def test_load_non_streaming_records_e2e_only_and_the_report_says_so(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    api_type: str,
) -> None:
    sim: SimulatorHandle = simulator_factory(
        "--ttft-ms", "20", "--itl-ms", "5", "--tokenizer", str(qwen_tokenizer_dir)
    )  # fmt: skip
    config = _config(tmp_path / "nonstream.yml", api_type)
    out = tmp_path / "load"
    argv = ["--config", str(config), "--out", str(out), "--base-url", sim.base_url]
    assert load_main([*argv, "--tokenizer-dir", str(qwen_tokenizer_dir)]) == 0
    rows = pq.read_table(out / "records.parquet").to_pylist()
    assert len(rows) == 10 and {r["status"] for r in rows} == {"ok"}
    for r in rows:
        assert r["first_token_ns"] is None and r["chunk_offsets_us"] == []
        assert (r["prompt_tokens"], r["output_tokens"], r["output_tokens_source"]) == (
            64,
            20,
            "server",
        )
        # The whole answer came after its 20 tokens were generated: TTFT + 19 steps at least.
        assert (r["last_token_ns"] - r["sent_ns"]) / 1e6 >= 20 + 19 * 5
        assert r["end_ns"] >= r["last_token_ns"]
    assert json.loads((out / "run.json").read_text())["streaming"] is False

    summary_dir = tmp_path / "summary"
    assert aggregate_main(["--records", str(out), "--out", str(summary_dir)]) == 0
    latency = json.loads((summary_dir / "summary.json").read_text())["overall"]["latency_ms"]
    assert latency["ttft"]["count"] == 0 and latency["ttft"]["p50"] is None
    assert latency["itl"]["p50"] is None and latency["tpot"]["p50"] is None
    assert latency["e2e"]["count"] == 10 and latency["e2e"]["p50"] >= 115

    report = tmp_path / "report"
    argv = ["--summary", str(summary_dir), "--records", str(out), "--out", str(report)]
    assert report_main([*argv, "--bucket", "", "--history-dir", str(tmp_path / "h")]) in (0, 3)
    assert "Non-streaming run (api.streaming: false)" in (report / "report.md").read_text()
