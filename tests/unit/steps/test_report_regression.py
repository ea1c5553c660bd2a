"""The regression check over a constructed history: verdicts, trend, change points, baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from steps.report.evidence import DEFAULT_TOLERANCES, ROW_COLUMNS
from steps.report.history import History, HistoryRun, read_rows
from steps.report.regression import CurrentRun, RegressionOutcome, check_regression
from steps.summary_model import parse_summary
from tests.fixtures.report_runs import build_run, run_id_of_night


def _run(root: Path, night: int, ttft_ms: float) -> HistoryRun:
    """A run whose every request has TTFT `ttft_ms` (so its within-run error is 0)."""
    built = build_run(root, run_id_of_night(night), ttft_ms=ttft_ms)
    summary = parse_summary((built.summary_dir / "summary.json").read_bytes(), "test")
    rows = read_rows(built.records_dir / "records.parquet", ROW_COLUMNS, 1000, "test")
    return HistoryRun(built.run_id, f"s3://b/{built.run_id}/", summary, rows)


def _check(root: Path, ttfts: Sequence[float], now_ms: float) -> RegressionOutcome:
    runs = tuple(_run(root, night, ttft) for night, ttft in enumerate(ttfts))
    now = _run(root, len(ttfts), now_ms)
    current = CurrentRun(now.run_id, now.location, now.summary, now.rows)
    return check_regression(current, History(runs), DEFAULT_TOLERANCES, 10)


def _verdict(outcome: RegressionOutcome, name: str) -> str:
    return next(v.status for v in outcome.verdicts if v.name == name)


def test_check_regression_slower_night_beyond_the_spread_is_a_regression(tmp_path: Path) -> None:
    outcome = _check(tmp_path, [100, 101, 99, 100, 102, 98], 120.0)
    assert _verdict(outcome, "ttft_p50_ms") == "regression"
    # Every request is equally slower: p99 too (+20 % > 15 %), e2e p50 +8 % (> 5 %), e2e p99 not.
    assert [v.name for v in outcome.regressions] == ["ttft_p50_ms", "ttft_p99_ms", "e2e_p50_ms"]
    assert _verdict(outcome, "itl_p50_ms") == "unchanged"
    assert outcome.baseline_runs == tuple(run_id_of_night(n) for n in range(6))
    trend = next(t for t in outcome.trends if t.name == "ttft_p50_ms")
    assert [p.value for p in trend.points] == pytest.approx([100, 101, 99, 100, 102, 98, 120])
    assert trend.points[-1].run_id == run_id_of_night(6)
    assert trend.band is not None and trend.band[0] < 100 < trend.band[1] < 120
    assert trend.change_points == ()


def test_check_regression_same_level_is_unchanged(tmp_path: Path) -> None:
    outcome = _check(tmp_path, [100, 101, 99, 100, 102, 98], 101.0)
    assert outcome.regressions == ()
    assert _verdict(outcome, "ttft_p50_ms") == "unchanged"


def test_check_regression_lasting_step_becomes_the_baseline(tmp_path: Path) -> None:
    ttfts = [100, 101, 99, 100, 130, 131, 129, 130, 131]
    outcome = _check(tmp_path, ttfts, 130.0)
    assert _verdict(outcome, "ttft_p50_ms") == "unchanged"
    assert f"ttft_p50_ms: level shift at run {run_id_of_night(4)}; baseline starts there" in (
        outcome.notes
    )
    trend = next(t for t in outcome.trends if t.name == "ttft_p50_ms")
    assert trend.change_points == (run_id_of_night(4),)  # once, where it began


def test_check_regression_run_without_rows_is_in_the_trend_not_the_baseline(
    tmp_path: Path,
) -> None:
    runs = [_run(tmp_path, night, 100.0 + night % 2) for night in range(4)]
    blind = HistoryRun(runs[1].run_id, runs[1].location, runs[1].summary, None)
    now = _run(tmp_path, 4, 100.0)
    history = History((runs[0], blind, runs[2], runs[3]), ("run x left out: damaged",))
    current = CurrentRun(now.run_id, now.location, now.summary, now.rows)
    outcome = check_regression(current, history, DEFAULT_TOLERANCES, 10)
    assert outcome.baseline_runs == (runs[0].run_id, runs[2].run_id, runs[3].run_id)
    assert outcome.notes[0] == "run x left out: damaged"
    trend = next(t for t in outcome.trends if t.name == "ttft_p50_ms")
    assert [p.value for p in trend.points] == pytest.approx([100, 101, 100, 101, 100])
    assert next(v for v in outcome.verdicts if v.name == "ttft_p50_ms").runs == 3
