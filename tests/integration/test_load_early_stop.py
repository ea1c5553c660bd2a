"""Early stop against a simulator of known capacity: the load step skips the stages past the
first saturated one, says so in run.json, and the report reads the run as complete, stopped
early (not as missing data).

The simulator serves at most 4 sequences at once: 4 / (20 ms + 31 x 5 ms) ≈ 23 requests/s at
32 output tokens. At 2/s and 10/s it keeps up; at 40/s requests queue and TTFT's tail grows
far past 2x the lowest stage's, so the run stops there and never sends the 80/s stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from steps.report.__main__ import main as report_main

StartSimulator = Any


def test_early_stop_skips_the_stages_past_saturation_and_the_report_says_so(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "20", "--itl-ms", "5", "--max-num-seqs", "4",
        "--tokenizer", str(qwen_tokenizer_dir),
    )  # fmt: skip
    load, summary, report = (tmp_path / d for d in ("load", "summary", "report"))
    code = load_main(
        [
            "--scenario", "saturation", "--stages", "2x2,10x2,40x2,80x2", "--num-workers", "2",
            "--input-tokens", "64", "--output-tokens", "32", "--early-stop", "on",
            "--out", str(load), "--tokenizer-dir", str(qwen_tokenizer_dir),
            "--base-url", sim.base_url, "--model-name", sim.model, "--run-id", "early-1",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = json.loads((load / "run.json").read_text())
    stopped = run["early_stop"]["stopped"]
    assert (stopped["stage"], stopped["rate"]) == (2, 40)
    assert any("the lowest stage's" in reason for reason in stopped["reasons"])
    assert stopped["skipped_stages"] == [{"stage": 3, "rate": 80, "duration_s": 2}]
    assert [s["rate"] for s in run["stages"]] == [2, 10, 40]
    # Not missing data: the skipped stage's 160 requests were never scheduled.
    assert run["complete"] is True
    assert run["scheduled_requests"] == run["recorded_requests"] == 4 + 20 + 80
    assert set(pq.read_table(load / "records.parquet").column("stage").to_pylist()) == {0, 1, 2}

    assert aggregate_main(["--records", str(load), "--out", str(summary)]) == 0
    code = report_main(["--summary", str(summary), "--records", str(load), "--out", str(report)])
    assert code == 0, capsys.readouterr().err
    verdict = json.loads((report / "verdict.json").read_text())
    complete = next(c for c in verdict["checks"] if c["name"] == "complete")
    assert complete["passed"] is True
    assert "stopped early after stage 2 (40/s saturated" in complete["detail"]
    assert verdict["capacity"]["knee_rate"] == 10
    assert any("skipped the stages at 80/s" in note for note in verdict["capacity"]["notes"])
    assert "stopped early after stage 2" in (report / "report.md").read_text()
