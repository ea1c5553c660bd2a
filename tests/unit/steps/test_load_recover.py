"""`python -m steps.load merge --out DIR` refusals, and a new run refusing a directory whose
parts were never merged, both naming the way out in one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main
from steps.load.writer import RecordBuffer, write_part
from steps.records import PARTS_DIR
from tests.helpers.load_records import T0, add_record


def _orphaned_part(out: Path) -> None:
    buf = RecordBuffer("run", 0, T0, 1)
    add_record(buf, 0, [1, 1])
    (out / PARTS_DIR).mkdir(parents=True)
    write_part(buf.take_table(), out / PARTS_DIR, 0, 1)


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_new_run_into_unmerged_parts_names_the_merge_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], qwen_tokenizer_dir: Path
) -> None:
    _orphaned_part(tmp_path)
    args = ["--out", str(tmp_path), "--tokenizer-dir", str(qwen_tokenizer_dir)]
    assert main([*args, "--base-url", "http://127.0.0.1:9", "--model-name", "m"]) == 2
    assert f"recover it with `python -m steps.load merge --out {tmp_path}`" in _last_line(capsys)


def test_merge_refuses_nothing_to_merge_a_damaged_run_json_and_a_merged_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["merge", "--out", str(tmp_path)]) == 2
    assert _last_line(capsys).endswith(f"no part files in {PARTS_DIR}/ to merge")
    _orphaned_part(tmp_path)
    (tmp_path / "run.json").write_text("{")
    assert main(["merge", "--out", str(tmp_path)]) == 2
    line = _last_line(capsys)
    assert "run.json is not readable" in line and "move it away to merge the parts" in line
    (tmp_path / "records.parquet").write_bytes(b"")
    assert main(["merge", "--out", str(tmp_path)]) == 2
    assert "could count records twice" in _last_line(capsys)


def test_merge_fills_in_counts_and_closes_open_stages(tmp_path: Path) -> None:
    _orphaned_part(tmp_path)
    stage = {
        "stage": 0,
        "rate": 1.0,
        "duration_s": 5.0,
        "start_ns": 0,
        "send_end_ns": 5_000_000_000,
    }
    run = {"run_id": "run", "scheduled_requests": 5, "stages": [stage | {"end_ns": None}]}
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert main(["merge", "--out", str(tmp_path)]) == 0
    merged = json.loads((tmp_path / "run.json").read_text())
    assert (merged["complete"], merged["recorded_requests"], merged["missing_requests"]) == (
        False,
        1,
        4,
    )
    assert merged["stages"][0]["end_ns"] == 5_000_000_000  # the send window outlasts the record
    assert not (tmp_path / PARTS_DIR).exists()


def test_merge_without_run_json_keeps_the_records_and_says_why(tmp_path: Path) -> None:
    """Parts but no run.json (main process lost before its first write, or that write failed):
    the records are merged, and run.json says the run is incomplete and why; it used to refuse,
    blaming a run that "ended before it started measuring"."""
    _orphaned_part(tmp_path)
    assert main(["merge", "--out", str(tmp_path)]) == 0
    assert pq.read_table(tmp_path / "records.parquet").num_rows == 1
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["run_id"], run["wall_start_ns"], run["stages"]) == ("run", 1, [])
    assert (run["complete"], run["recorded_requests"], run["scheduled_requests"]) == (
        False,
        1,
        None,
    )
    assert run["incomplete_reasons"][0].startswith("run.json was missing")
    assert run["incomplete_reasons"][1].startswith("part files merged afterwards by")
    assert aggregate_main(["--records", str(tmp_path), "--out", str(tmp_path / "summary")]) == 0
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    assert summary["run"]["complete"] is False
    assert summary["overall"]["requests"]["total"] == 1
