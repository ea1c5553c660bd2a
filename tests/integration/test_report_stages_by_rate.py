"""A multi-stage run judged stage by stage: its SLA per stage, and its regression against the
earlier runs' stages at the SAME RATE (not the same index), on real runs of the simulator.

The earlier night ran 4/s and 8/s; tonight adds a 2/s stage in front, so tonight's 4/s stage is
index 1 where the earlier night's was index 0: matched by rate, 4/s and 8/s are judged against
one earlier run, 2/s against none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from steps.report.__main__ import main as report_main
from tests.fixtures.report_runs import BuiltRun, store_in_history

StartSimulator = Any


def _night(sim: Any, tokenizer: Path, out: Path, run_id: str, stages: str) -> BuiltRun:
    load, summary = out / "load", out / "summary"
    code = load_main(
        [
            "--scenario", "saturation", "--stages", stages, "--num-workers", "1",
            "--input-tokens", "32", "--output-tokens", "8", "--run-id", run_id,
            "--out", str(load), "--tokenizer-dir", str(tokenizer),
            "--base-url", sim.base_url, "--model-name", sim.model,
        ]
    )  # fmt: skip
    assert code == 0
    assert aggregate_main(["--records", str(load), "--out", str(summary)]) == 0
    return BuiltRun(run_id, load, summary)


def test_stages_are_judged_by_rate_against_the_history(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory("--itl-ms", "2", "--tokenizer", str(qwen_tokenizer_dir))
    history = tmp_path / "history"
    earlier = _night(sim, qwen_tokenizer_dir, tmp_path / "n1", "20261201T020000Z-000001", "4x2,8x2")
    store_in_history(earlier, history, model=sim.model, scenario="saturation")
    tonight = _night(
        sim, qwen_tokenizer_dir, tmp_path / "n2", "20261202T020000Z-000002", "2x2,4x2,8x2"
    )
    report = tmp_path / "report"
    code = report_main(
        [
            "--summary", str(tonight.summary_dir), "--records", str(tonight.records_dir),
            "--out", str(report), "--history-dir", str(history), "--sla-ttft-p99-ms", "10000",
            "--sla-schedule-delay-p99-ms", "100",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    verdict = json.loads((report / "verdict.json").read_text())

    stages = {s["rate"]: s for s in verdict["regression"]["stages"]}
    assert sorted(stages) == [2, 4, 8]
    assert stages[2]["baseline_run_ids"] == []
    assert stages[4]["baseline_run_ids"] == stages[8]["baseline_run_ids"] == [earlier.run_id]
    assert stages[4]["stage"] == 1  # tonight's index: matched with the earlier night's stage 0
    ttft = next(m for m in stages[4]["metrics"] if m["name"] == "ttft_p50_ms")
    assert ttft["runs"] == 1 and ttft["baseline"] is not None
    assert all(m["status"] == "n/a" or m["runs"] == 0 for m in stages[2]["metrics"])

    by_rate = {s["rate"]: s for s in verdict["stage_sla"]}
    assert sorted(by_rate) == [2, 4, 8]
    assert {v["name"] for v in by_rate[4]["sla"]} >= {"ttft_p99_ms", "error_rate"}
    assert all(v["passed"] for s in by_rate.values() for v in s["sla"])
    markdown = (report / "report.md").read_text()
    assert "Per stage, by rate: SLA and regression" in markdown
    assert "no earlier run had this rate" in markdown
