"""Loading the run history from a local directory: selection, bounds, damaged objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.report import history as history_module
from steps.report.evidence import ROW_COLUMNS
from steps.report.history import LocalHistory, load_history
from tests.fixtures.report_runs import MODEL, build_run, run_id_of_night, store_in_history
from tests.helpers.summaries import group, summary_json

NOW = run_id_of_night(20)


def _history(root: Path) -> LocalHistory:
    return LocalHistory(root / "history", "baseline", MODEL)


def _store_night(root: Path, night: int, base_url: str = "http://vllm.models.svc:8000") -> Path:
    run = build_run(root / "built", run_id_of_night(night), base_url=base_url)
    return store_in_history(run, root / "history")


def _store_summary_text(root: Path, night: int, text: str) -> Path:
    run_dir = root / "history" / "baseline" / MODEL / run_id_of_night(night)
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(text)
    return run_dir


def _load(root: Path, window: int = 10) -> history_module.History:
    return load_history(_history(root), NOW, "http://vllm.models.svc:8000", window, ROW_COLUMNS)


def test_load_history_last_window_runs_of_same_target_oldest_first(tmp_path: Path) -> None:
    for night in (1, 2, 3, 5):
        _store_night(tmp_path, night)
    _store_night(tmp_path, 4, base_url="http://other:8000")  # another endpoint: not history
    _store_night(tmp_path, 21)  # newer than the current run: ignored
    loaded = _load(tmp_path, window=3)
    assert [r.run_id for r in loaded.runs] == [run_id_of_night(n) for n in (2, 3, 5)]
    assert all(r.rows is not None and r.rows.num_rows == 40 for r in loaded.runs)
    assert loaded.runs[0].location.endswith(f"baseline/{MODEL}/{run_id_of_night(2)}")
    assert loaded.notes == ()


def test_load_history_first_run_is_empty(tmp_path: Path) -> None:
    assert _load(tmp_path).runs == ()
    _store_night(tmp_path, 1, base_url="http://other:8000")
    assert _load(tmp_path).runs == ()


def test_load_history_damaged_summaries_skipped_one_line_each(tmp_path: Path) -> None:
    _store_night(tmp_path, 1)
    half = _store_summary_text(tmp_path, 2, "{not json")
    layout = _store_summary_text(tmp_path, 3, '{"run": {"base_url": "x"}, "overall": {}}')
    loaded = _load(tmp_path)
    assert [r.run_id for r in loaded.runs] == [run_id_of_night(1)]
    assert loaded.notes == (
        f"run {run_id_of_night(3)} skipped: {layout} summary.json: not a summary.json "
        "(steps/CONTRACTS.md): overall.requests: Field required",
        f"run {run_id_of_night(2)} skipped: {half} summary.json: not JSON (a half-written upload?)",
    )
    assert all("\n" not in note for note in loaded.notes)


def test_load_history_damaged_or_missing_records_leave_the_run_out_of_the_baseline(
    tmp_path: Path,
) -> None:
    _store_night(tmp_path, 1)
    damaged = _store_night(tmp_path, 2)
    (damaged / "records.parquet").write_bytes(b"PAR1 not really parquet")
    missing = _store_night(tmp_path, 3)
    (missing / "records.parquet").unlink()
    loaded = _load(tmp_path)
    assert [r.run_id for r in loaded.runs] == [run_id_of_night(n) for n in (1, 2, 3)]
    assert [r.rows is None for r in loaded.runs] == [False, True, True]
    first, second = loaded.notes
    assert first.startswith(f"run {run_id_of_night(3)} left out of the baseline: ")
    assert "records.parquet: cannot read (No such file or directory)" in first
    assert second.startswith(
        f"run {run_id_of_night(2)} left out of the baseline: {damaged} records.parquet: "
        "not a readable records.parquet ("
    )


def test_load_history_records_over_the_byte_cap_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _store_night(tmp_path, 1)
    monkeypatch.setattr(history_module, "MAX_RECORDS_BYTES", 100)
    loaded = _load(tmp_path)
    assert loaded.runs[0].rows is None
    size = (stored / "records.parquet").stat().st_size
    assert loaded.notes == (
        f"run {run_id_of_night(1)} left out of the baseline: {stored}/records.parquet: "
        f"{size} bytes, over the 100-byte cap",
    )


def test_load_history_rows_capped_per_run(tmp_path: Path) -> None:
    _store_night(tmp_path, 1)
    loaded = load_history(
        _history(tmp_path), NOW, "http://vllm.models.svc:8000", 10, ROW_COLUMNS, max_rows=7
    )
    rows = loaded.runs[0].rows
    assert rows is not None and rows.num_rows == 7 and rows.column_names == list(ROW_COLUMNS)


def test_local_history_summary_text_round_trip(tmp_path: Path) -> None:
    text = summary_json({"run_id": run_id_of_night(1), "base_url": "http://a"}, group())
    _store_summary_text(tmp_path, 1, text)
    assert (
        _history(tmp_path).read_file(run_id_of_night(1), "summary.json", 1 << 20) == text.encode()
    )
