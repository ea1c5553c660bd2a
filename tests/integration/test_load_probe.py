"""The sweep probe (`python -m steps.load probe`) against a simulator of known capacity.

The simulator decodes at most `--max-num-seqs` sequences at once; a request holds its slot
from admission to its last token: TTFT + (output_tokens - 1) x ITL, plus up to one ITL while
its first token waits for the running batch's next step. So its capacity is
max_num_seqs / (TTFT + (n - 1) x ITL) requests/s, within one ITL per request:
here 4 / (0.030 + 15 x 0.005) = 38.1/s (36.4/s with the extra step).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from steps.load.__main__ import main as load_main
from steps.stage_spec import parse_stages
from tests.fixtures.simulator import SimulatorHandle

StartSimulator = Any
TTFT_S, ITL_S, OUTPUT_TOKENS, MAX_NUM_SEQS = 0.030, 0.005, 16, 4
CAPACITY = MAX_NUM_SEQS / (TTFT_S + (OUTPUT_TOKENS - 1) * ITL_S)


def _config(path: Path, base_url: str, sweep: dict[str, Any]) -> Path:
    config = {
        "data": {
            "type": "random",
            "input_distribution": {"type": "fixed", "mean": 32, "min": 32, "max": 32},
            "output_distribution": {
                "type": "fixed",
                "mean": OUTPUT_TOKENS,
                "min": OUTPUT_TOKENS,
                "max": OUTPUT_TOKENS,
            },
        },
        "load": {"type": "constant", "stages": [], "num_workers": 2, "sweep": sweep},
        "server": {"base_url": base_url, "model_name": "Qwen/Qwen3-8B"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def sim(simulator_factory: StartSimulator, qwen_tokenizer_dir: Path) -> SimulatorHandle:
    handle: SimulatorHandle = simulator_factory(
        "--ttft-ms", f"{TTFT_S * 1e3:g}", "--itl-ms", f"{ITL_S * 1e3:g}",
        "--max-num-seqs", str(MAX_NUM_SEQS), "--tokenizer", str(qwen_tokenizer_dir),
    )  # fmt: skip
    return handle


def _probe(tmp_path: Path, tok: Path, config: Path, *flags: str) -> int:
    return load_main(
        [
            "probe", "--config", str(config), "--out", str(tmp_path / "probe"),
            "--tokenizer-dir", str(tok), "--outputs-dir", str(tmp_path / "outputs"), *flags,
        ]
    )  # fmt: skip


def test_ladder_finds_the_simulators_capacity_within_ten_percent(
    sim: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sweep = {"type": "geometric", "num_requests": 400, "timeout": 30, "num_stages": 4,
             "stage_duration": 7}  # fmt: skip
    config = _config(tmp_path / "sweep.yml", sim.base_url, sweep)

    assert _probe(tmp_path, qwen_tokenizer_dir, config) == 0

    doc = json.loads((tmp_path / "probe" / "probe.json").read_text())
    found = doc["saturation_rate"]
    assert abs(found / CAPACITY - 1) <= 0.10, (found, CAPACITY, doc["evidence"])
    rungs = doc["evidence"]["rungs"]
    assert [r["users"] for r in rungs][:3] == [1, 2, 4]
    assert all(abs(r["littles_law"] - 1) < 0.1 for r in rungs)  # X x R = in flight
    assert doc["evidence"]["client_bound_rungs"] == []
    assert doc["evidence"]["lower_bound"] is False
    stages = parse_stages((tmp_path / "outputs" / "stages").read_text())
    assert len(stages) == 4 and {s for _, s in stages} == {7}
    assert stages[0][0] == 1 and stages[-1][0] == round(found, 2)
    assert float((tmp_path / "outputs" / "saturation_rate").read_text()) == pytest.approx(
        found, abs=1e-3
    )


def test_burst_port_reports_a_percentile_of_the_drain_rates(
    sim: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sweep = {"type": "linear", "num_requests": 300, "timeout": 15, "num_stages": 3,
             "stage_duration": 5, "saturation_percentile": 95}  # fmt: skip
    config = _config(tmp_path / "sweep.yml", sim.base_url, sweep)

    assert _probe(tmp_path, qwen_tokenizer_dir, config, "--sweep-estimator", "burst") == 0

    doc = json.loads((tmp_path / "probe" / "probe.json").read_text())
    rates = doc["evidence"]["drain_rates"]
    assert len(rates) >= 2 and doc["estimator"] == "burst"
    assert doc["saturation_rate"] == pytest.approx(np.percentile(rates, 95))
    stages = parse_stages((tmp_path / "outputs" / "stages").read_text())
    assert [r for r, _ in stages] == [1, round((1 + doc["saturation_rate"]) / 2, 2),
                                      round(doc["saturation_rate"], 2)]  # fmt: skip


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"stages": [{"rate": 1, "duration": 1}]}, "the probe needs a load.sweep block"),
        (
            {"stages": [], "sweep": {"type": "linear", "num_stages": 0}},
            "load.sweep.num_stages: Input should be greater than or equal to 1",
        ),
        ({"stages": [], "sweep": {"type": "log"}}, "load.sweep.type: Input should be 'linear'"),
        (
            {"stages": [], "sweep": {"type": "linear", "num_requests": 3}},
            "load.sweep.num_requests 3 is too few for one ladder rung",
        ),
    ],
)
def test_bad_sweep_config_is_one_line_exit_2(
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    load: dict[str, Any],
    message: str,
) -> None:
    config = tmp_path / "sweep.yml"
    config.write_text(yaml.safe_dump({"load": load, "server": {"base_url": "http://127.0.0.1:9"}}))

    assert _probe(tmp_path, qwen_tokenizer_dir, config) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_sweep_flags_set_the_sweep_block(
    qwen_tokenizer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--sweep-<field>` flags are the workflow's knobs: each is checked as the config is."""
    config = tmp_path / "sweep.yml"
    config.write_text(yaml.safe_dump({"load": {"stages": [], "sweep": {"type": "linear"}},
                                      "server": {"base_url": "http://127.0.0.1:9"}}))  # fmt: skip

    code = _probe(tmp_path, qwen_tokenizer_dir, config, "--sweep-num-stages", "0")

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "config with flag overrides: load.sweep.num_stages: Input should be greater" in err[0]


def test_ladder_out_of_budget_says_its_rate_is_a_lower_bound(
    sim: SimulatorHandle, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    """50 requests buy the rungs of 1, 2 and 4 users (6 + 12 + 24), all still growing."""
    sweep = {"type": "linear", "num_requests": 50, "timeout": 30, "num_stages": 2,
             "stage_duration": 3}  # fmt: skip
    config = _config(tmp_path / "sweep.yml", sim.base_url, sweep)

    assert _probe(tmp_path, qwen_tokenizer_dir, config) == 0

    evidence = json.loads((tmp_path / "probe" / "probe.json").read_text())["evidence"]
    assert [r["users"] for r in evidence["rungs"]] == [1, 2, 4]
    assert evidence["lower_bound"] is True
    assert "saturation rate is a lower bound (next rung: 8 users" in evidence["stop_reason"]
