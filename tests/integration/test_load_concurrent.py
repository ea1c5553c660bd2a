"""Closed-loop load (`load.type: concurrent`) against the simulator: the in-flight concurrency
the SERVER saw is exactly the concurrency asked, however the users split across workers.

The simulator's ground truth gives each request's arrival (request head parsed) and its last
chunk's write, both on the wall clock: a request occupies the server in between. Its
`--max-num-seqs` is far above the users, so nothing queues and each user's next request arrives
as soon as the client turned around.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from tests.fixtures.simulator import SimulatorHandle

StartSimulator = Any


def _server_in_flight(truth: list[dict[str, Any]]) -> tuple[int, float]:
    """(most requests at the server at once, their time average over the busy window)."""
    spans = [(t["arrival_wall_ns"], t["chunk_wall_ns"][-1]) for t in truth if t["chunk_wall_ns"]]
    events = sorted([(a, 1) for a, _ in spans] + [(e, -1) for _, e in spans])
    level = most = 0
    for _, step in events:
        level += step
        most = max(most, level)
    # Steady window: from the last first-arrival of a user to the first end of the last wave.
    begin, end = min(a for a, _ in spans), max(e for _, e in spans)
    busy = sum(e - a for a, e in spans)
    return most, busy / (end - begin)


def _config(path: Path, sim: SimulatorHandle, num_requests: int, users: int, workers: int) -> Path:
    config = {
        "data": {
            "type": "random",
            "input_distribution": {"type": "fixed", "mean": 64, "min": 64, "max": 64},
            "output_distribution": {"type": "fixed", "mean": 24, "min": 24, "max": 24},
        },
        "load": {
            "type": "concurrent",
            "stages": [{"num_requests": num_requests, "concurrency_level": users}],
            "num_workers": workers,
        },
        "server": {"base_url": sim.base_url, "model_name": sim.model},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(("users", "workers"), [(7, 3), (2, 4)])
def test_server_sees_exactly_the_concurrency_asked(
    simulator_factory: StartSimulator,
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    users: int,
    workers: int,
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "30", "--itl-ms", "5", "--max-num-seqs", "256",
        "--tokenizer", str(qwen_tokenizer_dir),
    )  # fmt: skip
    num_requests = 10 * users
    config = _config(tmp_path / "concurrent.yml", sim, num_requests, users, workers)
    out = tmp_path / "out"

    code = load_main(
        ["--config", str(config), "--out", str(out), "--tokenizer-dir", str(qwen_tokenizer_dir)]
    )
    err = capsys.readouterr().err
    assert code == 0, err

    truth = sim.truth()
    assert len(truth) == num_requests
    most, mean = _server_in_flight(truth)
    assert most == users  # never more in flight than asked (inference-perf: 74.5 for 45)
    assert mean > 0.85 * users  # and held: each user's next request follows its last at once
    assert f"{users} most in flight of {users} users" in err

    rows = pq.read_table(out / "records.parquet").to_pylist()
    assert len(rows) == num_requests and {r["status"] for r in rows} == {"ok"}
    # scheduled = when the user became free: the stage start, or the end of a request of the
    # same worker (one of its users' previous request)
    start = min(r["scheduled_ns"] for r in rows)
    for worker in {r["worker"] for r in rows}:
        mine = [r for r in rows if r["worker"] == worker]
        ends = {r["end_ns"] for r in mine}
        later = [r["scheduled_ns"] for r in mine if r["scheduled_ns"] != start]
        assert later and set(later) <= ends
        assert sum(1 for r in mine if r["scheduled_ns"] == start) <= users
    assert sum(1 for r in rows if r["scheduled_ns"] == start) == users
    delays_ms = np.array([r["sent_ns"] - r["scheduled_ns"] for r in rows]) / 1e6
    assert np.percentile(delays_ms, 50) < 5

    stage = json.loads((out / "run.json").read_text())["stages"][0]
    assert stage["rate"] is None and stage["duration_s"] is None
    assert (stage["concurrency_level"], stage["num_requests"]) == (users, num_requests)
    assert stage["send_end_ns"] == stage["end_ns"]

    # aggregate reads a closed-loop run (no requested rate): throughput is its achieved rate
    assert aggregate_main(["--records", str(out), "--out", str(tmp_path / "summary")]) == 0
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    assert summary["stages"][0]["requested_rate"] is None
    assert summary["stages"][0]["requests"]["ok"] == num_requests
    delivered = summary["stages"][0]["concurrency"]
    assert (delivered["requested"], delivered["max"]) == (users, users)
    assert delivered["mean"] > 0.85 * users
    lifecycle = json.loads((tmp_path / "summary" / "stage_0_lifecycle_metrics.json").read_text())
    assert lifecycle["load_summary"]["concurrency"] == users
