"""End to end: a load step that writes nothing fails the run with its own cause.

`python -m workflows.baseline run` executes the rendered WorkflowTemplate against the built-in
simulator. The load step's `--out` is made to hold a part file of an "interrupted run", which it
refuses (exit 2) before measuring anything: aggregate then runs on the missing (optional)
records and fails in one line, the report is omitted, and the run fails naming the load first,
as Argo would phase the workflow (the omitted report inherits the failure).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steps.records import PARTS_DIR
from workflows.baseline import main


def test_load_that_wrote_nothing_fails_the_run_with_its_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    stale = out / "tasks" / "load" / "results" / PARTS_DIR
    stale.mkdir(parents=True)
    (stale / "w0-000001.part.parquet").write_bytes(b"not parquet")
    code = main(["run", "--duration", "2", "--out", str(out)], dict(os.environ))
    captured = capsys.readouterr()
    assert code == 1
    assert "[aggregate] started" in captured.err  # optional inputs: it runs and says why
    assert "[report] omitted" in captured.err
    assert "phase: Failed" in captured.out
    last = captured.err.strip().splitlines()[-1]
    assert "did not reach a verdict (load: exit code 2; aggregate: exit code 2)" in last
