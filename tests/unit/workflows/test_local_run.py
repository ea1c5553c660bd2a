"""`python -m workflows.baseline run` before anything starts (the run itself: tests/integration)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from workflows.baseline import main
from workflows.local_process import stop_process
from workflows.local_run import SIMULATOR_PORT, start_simulator


def test_run_bad_knob_exits_2_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    assert main(["run", "--rate", "-1", "--out", str(out)], environ={}) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("workflows.baseline: parameters: rate:")
    assert "simulator" not in err
    assert not out.exists()


def _start_and_stop(tmp_path: Path) -> str:
    proc, base_url = start_simulator("sim-model", dict(os.environ), tmp_path)
    stop_process(proc)
    return base_url


def test_simulator_keeps_one_base_url_across_runs_so_runs_share_a_history(tmp_path: Path) -> None:
    first = _start_and_stop(tmp_path / "one")
    second = _start_and_stop(tmp_path / "two")

    assert first == second == f"http://127.0.0.1:{SIMULATOR_PORT}"


def test_simulator_port_taken_starts_on_another_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", SIMULATOR_PORT))
        base_url = _start_and_stop(tmp_path)

    assert base_url != f"http://127.0.0.1:{SIMULATOR_PORT}"
    assert f"port {SIMULATOR_PORT} is taken" in capsys.readouterr().err
