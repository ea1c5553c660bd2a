"""`python -m workflows.baseline run` before anything starts (the run itself: tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.baseline import main


def test_run_bad_knob_exits_2_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    assert main(["run", "--rate", "-1", "--out", str(out)], environ={}) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("workflows.baseline: parameters: rate:")
    assert "simulator" not in err
    assert not out.exists()
