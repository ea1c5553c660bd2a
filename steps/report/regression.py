"""Regression check against the run history: per-metric verdicts, the trend and its change points.

The history (`steps.report.history`) gives the last `window` runs of the same scenario, model and
target; the ones whose rows could be read form the baseline, every one of them is in the trend.
Each metric is judged by `steps.report.evidence.judge`. Before that, change points
(`steps.report.changepoints`) over the baseline series decide what "the baseline" is: once a
level shift has lasted MIN_BASELINE_RUNS runs, the runs before it no longer describe the server,
so the baseline starts at the shift (a step is flagged on the nights it is new, then accepted
and shown once in the trend, at the run where it began).

A trend value is the metric from the run's rows when they were read (the same definition and SLO
as the verdict), else from its summary.json.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from steps.record_metrics import Slo
from steps.report.changepoints import change_points
from steps.report.evidence import (
    MIN_BASELINE_RUNS,
    Estimate,
    MetricVerdict,
    RunScale,
    judge,
    run_estimates,
)
from steps.report.history import History
from steps.summary_model import KEY_METRICS, REGRESSION_METRIC_NAMES, StageGroup, Summary

__all__ = [
    "CurrentRun",
    "MetricTrend",
    "RegressionOutcome",
    "StageRegression",
    "TrendPoint",
    "check_regression",
    "judge_against_history",
    "slo_of",
    "stage_regressions",
]


@dataclass(frozen=True)
class CurrentRun:
    """The run being judged: its id, where its results go, its summary and rows."""

    run_id: str
    location: str
    summary: Summary
    rows: pa.Table


@dataclass(frozen=True)
class TrendPoint:
    """One run's value of a metric in the trend (None: no data)."""

    run_id: str
    location: str
    value: float | None


@dataclass(frozen=True)
class MetricTrend:
    """A metric over the history and this run (last), its noise band and change points."""

    name: str
    points: tuple[TrendPoint, ...]
    band: tuple[float, float] | None
    change_points: tuple[str, ...]


@dataclass(frozen=True)
class StageRegression:
    """One stage of a multi-stage run judged against the earlier runs' stages at its rate."""

    stage: int
    rate: float
    baseline_runs: tuple[str, ...]  # the earlier runs that had a stage at this rate
    verdicts: tuple[MetricVerdict, ...]

    @property
    def regressions(self) -> tuple[MetricVerdict, ...]:
        return tuple(v for v in self.verdicts if v.status == "regression")


@dataclass(frozen=True)
class RegressionOutcome:
    """What the regression check found; without a history only `notes` say why not.
    `stages`: a multi-stage run's stages by rate (informative: see `stage_regressions`)."""

    tolerances: Mapping[str, float]
    window: int
    baseline_runs: tuple[str, ...] = ()
    verdicts: tuple[MetricVerdict, ...] = ()
    trends: tuple[MetricTrend, ...] = ()
    notes: tuple[str, ...] = ()
    stages: tuple[StageRegression, ...] = ()

    @property
    def regressions(self) -> tuple[MetricVerdict, ...]:
        """The metrics judged `regression` (each fails the verdict)."""
        return tuple(v for v in self.verdicts if v.status == "regression")


def slo_of(summary: Summary) -> Slo:
    """The SLO the run's goodput was counted against (none for summaries before SLOs)."""
    if summary.slo is None:
        return Slo()
    return Slo(summary.slo.ttft_ms, summary.slo.tpot_ms, summary.slo.e2e_ms)


def _since_last_shift(
    ids: Sequence[str], estimates: Sequence[Estimate], seed: int
) -> tuple[int, str | None]:
    """Index where the baseline starts: the last level shift with enough runs after it."""
    shifts = change_points([e.value for e in estimates], seed=seed)
    usable = [i for i in shifts if len(estimates) - i >= MIN_BASELINE_RUNS]
    if not usable:
        return 0, None
    return usable[-1], ids[usable[-1]]


def judge_against_history(
    name: str,
    current: Estimate | None,
    ids: Sequence[str],
    baseline: Sequence[Estimate],
    tolerance: float,
    seed: int = 0,
) -> tuple[MetricVerdict, str | None]:
    """`name`'s verdict against the runs `ids` (oldest first) since their last lasting level
    shift, and a note naming that shift (None without one)."""
    start, shift = _since_last_shift(ids, baseline, seed)
    note = None if shift is None else f"{name}: level shift at run {shift}; baseline starts there"
    return judge(name, current, baseline[start:], tolerance), note


def _trend(
    name: str, points: Sequence[TrendPoint], verdict: MetricVerdict, seed: int
) -> MetricTrend:
    """The metric's trend with its change points (run ids) and the baseline's noise band."""
    known = [(p.run_id, p.value) for p in points if p.value is not None]
    shifts = change_points([value for _, value in known], seed=seed) if len(known) > 1 else []
    band = None
    if verdict.baseline is not None and verdict.effect is not None and verdict.high is not None:
        scale = abs(verdict.baseline) if verdict.relative else 1.0
        half = (verdict.high - verdict.effect) * scale
        band = (verdict.baseline - half, verdict.baseline + half)
    return MetricTrend(name, tuple(points), band, tuple(known[i][0] for i in shifts))


def _value(
    estimates: Mapping[str, Estimate | None] | None, run: Summary, name: str
) -> float | None:
    """The trend value: from the rows' estimate when there is one, else from the summary."""
    estimate = estimates[name] if estimates is not None else None
    return estimate.value if estimate is not None else KEY_METRICS[name].read(run.overall)


_Estimates = Mapping[str, Estimate | None]


def _one_metric(
    name: str,
    current: CurrentRun,
    now: _Estimates,
    history: History,
    past: Sequence[_Estimates | None],
    tolerance: float,
    seed: int,
) -> tuple[MetricVerdict, MetricTrend, str | None]:
    """One metric: its baseline (since the last lasting shift), verdict, trend and a note."""
    ids = [run.run_id for run in history.runs]
    values = [estimates[name] if estimates is not None else None for estimates in past]
    verdict, note = _judge_known(name, now[name], ids, values, tolerance, seed)
    points = [
        TrendPoint(run.run_id, run.location, _value(estimates, run.summary, name))
        for run, estimates in zip(history.runs, past, strict=True)
    ]
    points.append(TrendPoint(current.run_id, current.location, _value(now, current.summary, name)))
    return verdict, _trend(name, points, verdict, seed), note


def _stage_rows(rows: pa.Table, stage: int) -> pa.Table:
    return rows.filter(pc.equal(rows.column("stage"), stage))


def _at_rate(summary: Summary, rate: float) -> StageGroup | None:
    """The run's stage at `rate` (the first, should it have several), None without one."""
    return next(
        (g for g in summary.stages if g.rate is not None and math.isclose(g.rate, rate)), None
    )


def _judge_known(
    name: str,
    current: Estimate | None,
    ids: Sequence[str],
    past: Sequence[Estimate | None],
    tolerance: float,
    seed: int,
) -> tuple[MetricVerdict, str | None]:
    """`judge_against_history` over the earlier runs that have a value for `name`."""
    known = [(run_id, e) for run_id, e in zip(ids, past, strict=True) if e is not None]
    runs, baseline = [r for r, _ in known], [e for _, e in known]
    return judge_against_history(name, current, runs, baseline, tolerance, seed)


def stage_regressions(
    current: CurrentRun, history: History, tolerances: Mapping[str, float], seed: int = 0
) -> tuple[StageRegression, ...]:
    """Each stage of a multi-stage run against the earlier runs' stages at the same rate.

    Matched by rate, not by index: a ladder that gained a lower stage still compares 20/s
    with 20/s. Informative, it does not fail the verdict: a four-stage run judges four times
    as many metrics, and at a 1 % level per metric that would flag an unchanged server about
    one night in five; the overall check (REGRESSION_METRIC_NAMES over all rows) decides.
    """
    if len(current.summary.stages) < 2 or "stage" not in current.rows.column_names:
        return ()
    slo, judged = slo_of(current.summary), []
    for group in current.summary.stages:
        if group.rate is None:
            continue
        rows = _stage_rows(current.rows, group.stage)
        now = run_estimates(rows, RunScale.of(group), slo)
        ids, past = [], []
        for run in history.runs:
            match = _at_rate(run.summary, group.rate)
            if run.rows is None or match is None or "stage" not in run.rows.column_names:
                continue
            ids.append(run.run_id)
            past.append(run_estimates(_stage_rows(run.rows, match.stage), RunScale.of(match), slo))
        verdicts = tuple(
            _judge_known(name, now[name], ids, [p[name] for p in past], tolerances[name], seed)[0]
            for name in REGRESSION_METRIC_NAMES
        )
        judged.append(StageRegression(group.stage, group.rate, tuple(ids), verdicts))
    return tuple(judged)


def check_regression(
    current: CurrentRun,
    history: History,
    tolerances: Mapping[str, float],
    window: int,
    seed: int = 0,
) -> RegressionOutcome:
    """Every regression metric of `current` judged against `history` (oldest run first)."""
    slo = slo_of(current.summary)
    now = run_estimates(current.rows, RunScale.of(current.summary.overall), slo)
    past = [
        None if run.rows is None else run_estimates(run.rows, RunScale.of(run.summary.overall), slo)
        for run in history.runs
    ]
    verdicts, trends, notes = [], [], list(history.notes)
    for name in REGRESSION_METRIC_NAMES:
        verdict, trend, note = _one_metric(
            name, current, now, history, past, tolerances[name], seed
        )
        verdicts.append(verdict)
        trends.append(trend)
        notes += [note] if note else []
    used = tuple(run.run_id for run in history.runs if run.rows is not None)
    stages = stage_regressions(current, history, tolerances, seed)
    return RegressionOutcome(
        tolerances, window, used, tuple(verdicts), tuple(trends), tuple(notes), stages
    )
