"""aggregate refuses inputs that are not one run, and carries a run's completeness into
summary.json (issue 10 items 8 and 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from steps.aggregate.__main__ import main
from steps.records import PARTS_DIR
from tests.helpers.aggregate_records import aggregate, record_row, stage_window, write_shard

OTHER_RUN = "20261128T000000Z-fedcba"


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("aggregate: "), lines
    return lines[-1]


def test_records_of_two_runs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_shard(
        tmp_path / "a", [record_row(i) for i in range(3)], [stage_window(0, 1.0, 0, 3, 4)]
    )
    other = [record_row(i) | {"run_id": OTHER_RUN} for i in range(3, 6)]
    b = write_shard(tmp_path / "b", other)
    assert main(["--records", str(a), str(b), "--out", str(tmp_path / "out")]) == 2
    line = _error_line(capsys)
    assert "belong to different runs" in line and OTHER_RUN in line and str(b) in line


def test_run_json_of_another_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_shard(tmp_path / "r", [record_row(0)], [stage_window(0, 1.0, 0, 1, 2)])
    run = json.loads((records / "run.json").read_text())
    (records / "run.json").write_text(json.dumps(run | {"run_id": OTHER_RUN}))
    assert main(["--records", str(records), "--out", str(tmp_path / "out")]) == 2
    assert OTHER_RUN in _error_line(capsys)


def test_same_records_twice_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = write_shard(tmp_path / "r", [record_row(i) for i in range(3)])
    args = ["--records", str(records), str(records / "records.parquet")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "6 rows share their (stage, request_index)" in _error_line(capsys)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "records.parquet").write_bytes((records / "records.parquet").read_bytes())
    assert main(["--records", str(records), str(copy), "--out", str(tmp_path / "out")]) == 2
    line = _error_line(capsys)
    assert "6 rows share their (stage, request_index)" in line and "request_index 0" in line


def test_shards_of_one_run_with_disjoint_requests_are_merged(tmp_path: Path) -> None:
    a = write_shard(tmp_path / "a", [record_row(i) for i in range(0, 6, 2)])
    b = write_shard(tmp_path / "b", [record_row(i) for i in range(1, 6, 2)])
    summary = aggregate(tmp_path / "out", a, b)
    assert summary["overall"]["requests"]["total"] == 6


def _with_completeness(records: Path, **fields: object) -> None:
    run = json.loads((records / "run.json").read_text())
    (records / "run.json").write_text(json.dumps(run | fields))


def test_completeness_is_carried_over_every_shard(tmp_path: Path) -> None:
    a = write_shard(
        tmp_path / "a", [record_row(i) for i in range(0, 6, 2)], [stage_window(0, 1.0, 0, 6, 7)]
    )
    b = write_shard(
        tmp_path / "b", [record_row(i) for i in range(1, 6, 2)], [stage_window(0, 1.0, 0, 6, 7)]
    )
    _with_completeness(
        a, complete=True, scheduled_requests=3, recorded_requests=3, incomplete_reasons=[]
    )
    _with_completeness(
        b,
        complete=False,
        scheduled_requests=5,
        recorded_requests=3,
        interrupted="SIGTERM",
        incomplete_reasons=["interrupted by SIGTERM"],
    )
    run = aggregate(tmp_path / "out", a, b)["run"]
    assert run["complete"] is False
    assert run["interrupted"] == "SIGTERM"  # the second shard's: "run" is the first's run.json
    assert (run["scheduled_requests"], run["recorded_requests"]) == (8, 6)
    assert run["incomplete_reasons"] == ["interrupted by SIGTERM"]
    assert (
        "complete"
        not in aggregate(tmp_path / "old", write_shard(tmp_path / "o", [record_row(0)]))["run"]
    )


def test_unmerged_parts_hint_names_the_merge_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load"
    (out / PARTS_DIR).mkdir(parents=True)
    table = pq.read_table(write_shard(tmp_path / "r", [record_row(0)]) / "records.parquet")
    pq.write_table(table, out / PARTS_DIR / "w000-000001.part.parquet")
    assert main(["--records", str(out), "--out", str(tmp_path / "out")]) == 2
    assert f"`python -m steps.load merge --out {out}`" in _error_line(capsys)
