"""The step's one verdict: run checks, SLA thresholds and the regression check, and how it is told.

`judge_run` decides (`pass` / `fail` with one phrase per breach); `verdict_json` and
`output_values` are what verdict.json and the Argo output parameters say about it
(steps/CONTRACTS.md "Report verdict"). The regression check runs against the run history; a
history that cannot be read is a note in the report, never a step failure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from steps.cli import read_input_text
from steps.outputs import format_number
from steps.report.capacity import Capacity, read_capacity
from steps.report.config import ReportConfig
from steps.report.evidence import DEFAULT_TOLERANCES, ROW_COLUMNS
from steps.report.history import MAX_ROWS_PER_RUN, HistoryError, load_history, read_rows
from steps.report.regression import CurrentRun, RegressionOutcome, check_regression
from steps.report.run_checks import RunCheck, check_run
from steps.report.sla import (
    SlaVerdict,
    evaluate_sla,
    evaluate_stage_sla,
    merge_thresholds,
    parse_sla_yaml,
)
from steps.report.storage import RunIdentity, Storage
from steps.summary_model import CAPACITY_OUTPUT_NAMES, KEY_METRICS, OUTPUT_METRIC_NAMES, Summary

__all__ = [
    "ReportResult",
    "judge_run",
    "output_values",
    "sla_thresholds",
    "tolerances",
    "verdict_json",
]

log = logging.getLogger("steps.report")

#: How a breach line reads for an upper ("<=") and a lower (">=") bound.
_BROKEN = {"<=": ">", ">=": "<"}

#: Decimals of an output parameter by unit: a ratio such as error_rate needs more than ms.
_OUTPUT_DIGITS = {"ms": 3, "1/s": 3, "ratio": 6}


@dataclass(frozen=True)
class ReportResult:
    """What the step decided and where the report is."""

    verdict: str
    checks: tuple[RunCheck, ...]
    sla: tuple[SlaVerdict, ...]
    regression: RegressionOutcome
    report_uri: str
    breaches: tuple[str, ...]
    capacity: Capacity | None = None  # None: not a run of several rates
    #: A multi-stage run's SLA per stage (informs; the overall SLA decides): (stage, rate, ...).
    stage_sla: tuple[tuple[int, float | None, tuple[SlaVerdict, ...]], ...] = ()


def sla_thresholds(config: ReportConfig) -> dict[str, float | None]:
    """Defaults, overridden by the --sla file, overridden by --sla-* flags."""
    from_file = {}
    if config.sla is not None:
        text = read_input_text(config.sla, "--sla")
        from_file = parse_sla_yaml(text, f"--sla {config.sla}")
    return merge_thresholds(from_file, config.sla_flags)


def tolerances(config: ReportConfig) -> dict[str, float]:
    """Per-metric defaults, then --regression-tolerance for the relative ones, then per metric."""
    given = dict(DEFAULT_TOLERANCES)
    if config.regression_tolerance is not None:
        for name in given:
            if KEY_METRICS[name].unit != "ratio":
                given[name] = config.regression_tolerance
    return given | config.regression_tolerances


def _current_rows(records: Sequence[Path]) -> pa.Table:
    """The current run's rows (every shard, bounded like a history run's; HistoryError)."""
    tables = [
        read_rows(path, ROW_COLUMNS, MAX_ROWS_PER_RUN, f"--records {path}") for path in records
    ]
    return pa.concat_tables(tables)


def _regression(
    config: ReportConfig,
    storage: Storage,
    identity: RunIdentity,
    summary: Summary,
    records: Sequence[Path],
) -> RegressionOutcome:
    """The check against the run history; a failed lookup is a note, never a step failure."""
    given = tolerances(config)
    window = config.history_window
    if storage.history is None:
        note = "No run history (no --bucket or --history-dir): nothing to compare with."
        return RegressionOutcome(given, window, notes=(note,))
    history = load_history(storage.history, identity.run_id, identity.base_url, window, ROW_COLUMNS)
    if not history.runs:
        first = "First run of this scenario, model and target: nothing to compare with."
        return RegressionOutcome(given, window, notes=(*history.notes, first))
    try:
        rows = _current_rows(records)
    except HistoryError as exc:
        return RegressionOutcome(given, window, notes=(*history.notes, f"no verdict: {exc}"))
    location = storage.run_location(config.out)
    current = CurrentRun(identity.run_id, location, summary, rows)
    outcome = check_regression(current, history, given, window)
    log.info(
        "judged against %d earlier runs: %d regressions",
        len(outcome.baseline_runs),
        len(outcome.regressions),
    )
    return outcome


def _sla_value(verdict: SlaVerdict) -> str:
    """The measured value for a breach line; a run with no data for it says so, not a blank."""
    return "no data" if verdict.value is None else format_number(verdict.value)


def _breaches(
    checks: Sequence[RunCheck], sla: Sequence[SlaVerdict], regression: RegressionOutcome
) -> list[str]:
    """One short phrase per failed check, threshold or regressed metric, for logs and exit line."""
    found = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    found += [
        f"{v.name} {_sla_value(v)} {_BROKEN[v.bound]} {format_number(v.limit)}"
        for v in sla
        if not v.passed
    ]
    found += [f"{v.name} regressed: {v.reason}" for v in regression.regressions]
    return found


def judge_run(
    config: ReportConfig,
    summary: Summary,
    identity: RunIdentity,
    thresholds: Mapping[str, float | None],
    storage: Storage,
    records: Sequence[Path],
) -> ReportResult:
    """Run checks, SLA `thresholds` and the regression check into one verdict."""
    checks = check_run(config.load_exit_code, summary.run)
    sla = evaluate_sla(thresholds, summary.overall)
    regression = _regression(config, storage, identity, summary, records)
    breaches = _breaches(checks, sla, regression)
    return ReportResult(
        verdict="fail" if breaches else "pass",
        checks=tuple(checks),
        sla=tuple(sla),
        regression=regression,
        report_uri=storage.report_uri(config.out),
        breaches=tuple(breaches),
        capacity=read_capacity(
            summary.stages, thresholds, config.capacity_headroom, summary.run.stopped_early()
        ),
        stage_sla=tuple(
            (s.stage, s.rate, tuple(evaluate_stage_sla(thresholds, s)))
            for s in (summary.stages if len(summary.stages) > 1 else ())
        ),
    )


def output_values(summary: Summary, result: ReportResult, report_uri: str) -> dict[str, str]:
    """The Argo output parameters: verdict, the key metrics, the capacity rates, report_uri."""
    values = {"verdict": result.verdict}
    for name in OUTPUT_METRIC_NAMES:
        metric = KEY_METRICS[name]
        values[name] = format_number(metric.read(summary.overall), _OUTPUT_DIGITS[metric.unit])
    rates = _capacity_rates(result.capacity)
    values |= {name: format_number(rates[name]) for name in CAPACITY_OUTPUT_NAMES}
    values["report_uri"] = report_uri
    return values


def _capacity_rates(capacity: Capacity | None) -> dict[str, float | None]:
    """CAPACITY_OUTPUT_NAMES -> rate (None when the run cannot tell it)."""
    if capacity is None:
        return dict.fromkeys(CAPACITY_OUTPUT_NAMES)
    # Each output parameter is named after the Capacity field it carries.
    return {name: getattr(capacity, name) for name in CAPACITY_OUTPUT_NAMES}


def _capacity_json(capacity: Capacity | None) -> dict[str, Any] | None:
    """verdict.json `capacity`: the rates, the headroom and each stage's reading."""
    if capacity is None:
        return None
    stages = [
        {
            "stage": p.stage,
            "rate": p.requested_rate,
            "saturation": list(p.saturation),
            "sla_breaches": list(p.sla_breaches),
            "client_limited": p.client_limited,
        }
        for p in capacity.points
    ]
    return {
        **_capacity_rates(capacity),
        "saturated_rate": capacity.saturated_rate,
        "headroom": capacity.headroom,
        "notes": list(capacity.notes),
        "stages": stages,
    }


def verdict_json(result: ReportResult, run_id: str) -> dict[str, Any]:
    """verdict.json (steps/CONTRACTS.md "Report verdict")."""
    regression = result.regression
    return {
        "verdict": result.verdict,
        "run_id": run_id,
        "breaches": list(result.breaches),
        "checks": [c.__dict__ for c in result.checks],
        "sla": [v.__dict__ for v in result.sla],
        "regression": {
            "window": regression.window,
            "tolerances": dict(regression.tolerances),
            "baseline_run_ids": list(regression.baseline_runs),
            "notes": list(regression.notes),
            "metrics": [v.__dict__ for v in regression.verdicts],
            "change_points": {t.name: list(t.change_points) for t in regression.trends},
            "stages": [
                {
                    "stage": st.stage,
                    "rate": st.rate,
                    "baseline_run_ids": list(st.baseline_runs),
                    "metrics": [v.__dict__ for v in st.verdicts],
                }
                for st in regression.stages
            ],
        },
        "stage_sla": [
            {"stage": stage, "rate": rate, "sla": [v.__dict__ for v in verdicts]}
            for stage, rate, verdicts in result.stage_sla
        ],
        "capacity": _capacity_json(result.capacity),
        "report_uri": result.report_uri,
    }
