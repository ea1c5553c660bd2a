"""The saturation scenario against a simulator of known capacity: the report's capacity reading.

The simulator serves at most `--max-num-seqs` sequences at once, so its capacity is
max_num_seqs / e2e requests per second: 20 / (0.05 s + 255 tokens x 5 ms) = 15/s at the
scenario's mean output of 256 tokens. Below it the stages hold; above it the queue grows and
TTFT's tail explodes, so the knee must be the stage below 15/s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from steps.report.__main__ import main as report_main

StartSimulator = Any


def test_saturation_scenario_knee_below_the_simulators_capacity(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "50", "--itl-ms", "5", "--max-num-seqs", "20",
        "--tokenizer", str(qwen_tokenizer_dir),
    )  # fmt: skip
    load, summary, report, outputs = (tmp_path / d for d in ("load", "summary", "report", "out"))

    code = load_main(
        [
            "--scenario", "saturation", "--duration", "4", "--num-workers", "2",
            "--out", str(load), "--tokenizer-dir", str(qwen_tokenizer_dir),
            "--base-url", sim.base_url, "--model-name", sim.model, "--run-id", "capacity-1",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert aggregate_main(["--records", str(load), "--out", str(summary)]) == 0
    code = report_main(
        [
            "--summary", str(summary), "--records", str(load), "--out", str(report),
            "--outputs-dir", str(outputs), "--sla-ttft-p99-ms", "500",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err

    rates = {n: (outputs / n).read_text() for n in ("knee_rate", "max_rate_within_sla")}
    assert rates == {"knee_rate": "10.000", "max_rate_within_sla": "10.000"}
    assert (outputs / "recommended_rate").read_text() == "7.500"
    capacity = json.loads((report / "verdict.json").read_text())["capacity"]
    assert capacity["saturated_rate"] == 20
    assert [s["rate"] for s in capacity["stages"]] == [5, 10, 20, 40]
    assert [bool(s["saturation"]) for s in capacity["stages"]] == [False, False, True, True]
    assert "Knee (highest rate before saturation): 10.00/s" in (report / "report.md").read_text()
