"""Regression comparison (pure) and finding the previous run in a local history directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.errors import UsageError
from steps.report.regression import LocalHistory, compare_runs, find_previous_run
from steps.summary_model import Group
from tests.helpers.summaries import group, stats, summary_json


def _overall(ttft_p50: float, ttft_p99: float, tokens_per_s: float = 100.0) -> Group:
    return group(ttft=stats(ttft_p50, ttft_p99), output_tokens_per_s=tokens_per_s)


def _status(deltas: list, name: str) -> str:  # type: ignore[type-arg]
    return next(d.status for d in deltas if d.name == name)


def test_compare_runs_slower_beyond_tolerance_is_regression() -> None:
    deltas = compare_runs(_overall(115.0, 200.0), _overall(100.0, 200.0), 0.10)
    ttft = next(d for d in deltas if d.name == "ttft_p50_ms")
    assert ttft.status == "regression"
    assert ttft.change == pytest.approx(0.15)
    assert _status(deltas, "ttft_p99_ms") == "unchanged"


def test_compare_runs_faster_beyond_tolerance_is_improvement() -> None:
    deltas = compare_runs(_overall(80.0, 150.0), _overall(100.0, 200.0), 0.10)
    assert _status(deltas, "ttft_p50_ms") == "improvement"
    assert _status(deltas, "ttft_p99_ms") == "improvement"


def test_compare_runs_within_tolerance_is_unchanged() -> None:
    deltas = compare_runs(_overall(109.0, 191.0), _overall(100.0, 200.0), 0.10)
    assert _status(deltas, "ttft_p50_ms") == "unchanged"
    assert _status(deltas, "ttft_p99_ms") == "unchanged"


def test_compare_runs_throughput_drop_is_regression() -> None:
    deltas = compare_runs(_overall(100, 200, 80.0), _overall(100, 200, 100.0), 0.10)
    assert _status(deltas, "output_tokens_per_s") == "regression"


def test_compare_runs_missing_metric_is_not_applicable() -> None:
    deltas = compare_runs(_overall(100, 200), _overall(100, 200), 0.10)
    assert _status(deltas, "itl_p99_ms") == "n/a"


def _store_text(root: Path, run_id: str, text: str) -> Path:
    """`text` as the summary.json of `run_id` in a local history; the run's directory."""
    run_dir = root / "baseline" / "Qwen/Qwen3-8B" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(text)
    return run_dir


def _store(root: Path, run_id: str, base_url: str) -> None:
    _store_text(root, run_id, summary_json({"run_id": run_id, "base_url": base_url}, group()))


def test_find_previous_run_picks_newest_older_same_target(tmp_path: Path) -> None:
    _store(tmp_path, "20261101T020000Z-000001", "http://a")
    _store(tmp_path, "20261102T020000Z-000002", "http://a")
    _store(tmp_path, "20261103T020000Z-000003", "http://b")
    _store(tmp_path, "20261105T020000Z-000005", "http://a")  # newer than current: ignored
    history = LocalHistory(tmp_path, "baseline", "Qwen/Qwen3-8B")
    previous = find_previous_run(history, "20261104T020000Z-000004", "http://a")
    assert previous is not None
    assert previous.run_id == "20261102T020000Z-000002"
    assert previous.location.endswith("baseline/Qwen/Qwen3-8B/20261102T020000Z-000002")


def test_find_previous_run_first_run_returns_none(tmp_path: Path) -> None:
    _store(tmp_path, "20261101T020000Z-000001", "http://other")
    history = LocalHistory(tmp_path, "baseline", "Qwen/Qwen3-8B")
    assert find_previous_run(history, "20261104T020000Z-000004", "http://a") is None
    assert find_previous_run(LocalHistory(tmp_path, "x", "y"), "2026", "http://a") is None


def test_find_previous_run_skips_unreadable_summary(tmp_path: Path) -> None:
    _store(tmp_path, "20261101T020000Z-000001", "http://a")
    _store_text(tmp_path, "20261102T020000Z-000002", "{not json")
    history = LocalHistory(tmp_path, "baseline", "Qwen/Qwen3-8B")
    previous = find_previous_run(history, "20261104T020000Z-000004", "http://a")
    assert previous is not None and previous.run_id == "20261101T020000Z-000001"


def test_find_previous_run_json_that_is_no_summary_stops_with_one_line(tmp_path: Path) -> None:
    _store(tmp_path, "20261101T020000Z-000001", "http://a")
    no_summary = '{"run": {"base_url": "http://a"}, "overall": {}}'
    other = _store_text(tmp_path, "20261102T020000Z-000002", no_summary)
    history = LocalHistory(tmp_path, "baseline", "Qwen/Qwen3-8B")
    with pytest.raises(UsageError) as caught:
        find_previous_run(history, "20261104T020000Z-000004", "http://a")
    message = str(caught.value)
    assert message.startswith(f"{other} summary.json: not a summary.json (steps/CONTRACTS.md): ")
    assert "overall.requests: Field required" in message and "\n" not in message
