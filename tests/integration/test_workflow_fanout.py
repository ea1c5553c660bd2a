"""End to end: `python -m workflows.baseline run --load-pods 2` runs the fanned-out template on
this machine: the coordinator daemon, two load pods as processes, each pod's files under its
key in the artifact repository, aggregate and report over both shards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from workflows.baseline import main


def test_run_two_load_pods_merge_into_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fanout-run"
    argv = ["run", "--load-pods", "2", "--duration", "4", "--rate", "4", "--num-workers", "1"]
    assert main([*argv, "--out", str(out)], dict(os.environ)) == 0
    stdout = capsys.readouterr().out
    assert "phase: Succeeded" in stdout
    shards = sorted((out / "repository" / out.name / "load-shards").iterdir())
    assert [s.name for s in shards] == ["pod-0", "pod-1"]
    runs = [json.loads((s / "run.json").read_text()) for s in shards]
    assert len({r["run_id"] for r in runs}) == 1
    assert runs[0]["wall_start_ns"] == runs[1]["wall_start_ns"]
    indexes = sorted(
        i for s in shards for i in pq.read_table(s / "records.parquet")["request_index"].to_pylist()
    )
    assert indexes == list(range(16))
    summary = json.loads((out / "artifacts" / "aggregate" / "summary" / "summary.json").read_text())
    assert summary["run"]["shards"] == 2
    assert [p["requests"] for p in summary["run"]["pods"]] == [8, 8]
    assert summary["overall"]["requests"]["ok"] == 16
    report = (out / "tasks" / "report" / "report" / "report.md").read_text()
    assert "## Load pods" in report
