"""Regression check against the previous run of the same scenario, model and target.

Comparison is pure (`compare_runs`). Finding the previous run goes through `RunHistory`, which
S3 (`steps.report.upload.S3History`) and a local directory (`LocalHistory`) both implement with
the same layout, `{root}/{scenario}/{model}/{run_id}/summary.json`: run ids sort by time
(`YYYYMMDDTHHMMSSZ-<hex>`), so "previous" is the greatest run id below the current one whose
summary names the same base_url (one prefix may hold runs against several endpoints). A stored
summary that is not JSON (a half-written upload) is skipped; one that is JSON but not the
summary.json layout stops the lookup with one line (`steps.summary_model.parse_summary`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from steps.summary_model import KEY_METRICS, REGRESSION_METRIC_NAMES, Group, Summary, parse_summary

__all__ = [
    "DEFAULT_TOLERANCE",
    "LocalHistory",
    "MetricDelta",
    "PreviousRun",
    "RunHistory",
    "compare_runs",
    "find_previous_run",
]

DEFAULT_TOLERANCE = 0.10

#: How many older runs to open looking for one with the same base_url before giving up; bounds
#: the S3 requests when a prefix holds many runs against other endpoints.
MAX_CANDIDATES = 50

Status = Literal["regression", "improvement", "unchanged", "n/a"]


@dataclass(frozen=True)
class MetricDelta:
    """One metric now vs before; `change` is relative ((now - before) / before), None if n/a."""

    name: str
    previous: float | None
    current: float | None
    change: float | None
    status: Status


@dataclass(frozen=True)
class PreviousRun:
    """The run compared against: its id, where it was found, and its summary.json."""

    run_id: str
    location: str
    summary: Summary


class RunHistory(Protocol):
    """Earlier runs of one scenario and model (S3 prefix or local directory)."""

    def run_ids(self) -> list[str]:
        """Ids of the runs stored for this scenario and model (any order)."""
        ...

    def read_summary(self, run_id: str) -> bytes | None:
        """That run's summary.json text, or None when it has none or it is unreadable."""
        ...

    def location(self, run_id: str) -> str:
        """Where that run lives (URI or path), for the report."""
        ...


def _status(change: float, lower_is_better: bool, tolerance: float) -> Status:
    worse = change if lower_is_better else -change
    if worse > tolerance:
        return "regression"
    if worse < -tolerance:
        return "improvement"
    return "unchanged"


def compare_runs(current: Group, previous: Group, tolerance: float) -> list[MetricDelta]:
    """Key-metric deltas between two summaries' `overall` groups (tolerance 0.10 = 10 %)."""
    deltas = []
    for name in REGRESSION_METRIC_NAMES:
        metric = KEY_METRICS[name]
        now, before = metric.read(current), metric.read(previous)
        if now is None or before is None or before == 0:
            deltas.append(MetricDelta(name, before, now, None, "n/a"))
            continue
        change = (now - before) / before
        status = _status(change, metric.better == "lower", tolerance)
        deltas.append(MetricDelta(name, before, now, change, status))
    return deltas


def find_previous_run(
    history: RunHistory, run_id: str, base_url: str, max_candidates: int = MAX_CANDIDATES
) -> PreviousRun | None:
    """The newest stored run older than `run_id` whose summary has the same base_url.

    Raises UsageError (one line) for a stored summary that is JSON but not a summary.json.
    """
    older = sorted((rid for rid in history.run_ids() if rid < run_id), reverse=True)
    for candidate in older[:max_candidates]:
        text = history.read_summary(candidate)
        if text is None or not _is_json(text):
            continue
        summary = parse_summary(text, f"{history.location(candidate)} summary.json")
        if summary.run.base_url == base_url:
            return PreviousRun(candidate, history.location(candidate), summary)
    return None


def _is_json(text: bytes) -> bool:
    """False for a half-written upload or a truncated file: skipped, not an error."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class LocalHistory:
    """Runs kept on a filesystem with the S3 layout (`--history-dir`, or a synced bucket copy)."""

    def __init__(self, root: Path, scenario: str, model: str) -> None:
        self._base = root / scenario / model

    def run_ids(self) -> list[str]:
        """Subdirectories holding a summary.json."""
        if not self._base.is_dir():
            return []
        return [p.name for p in self._base.iterdir() if (p / "summary.json").is_file()]

    def read_summary(self, run_id: str) -> bytes | None:
        """summary.json's bytes, None when it cannot be read."""
        try:
            return (self._base / run_id / "summary.json").read_bytes()
        except OSError:
            return None

    def location(self, run_id: str) -> str:
        """The run's directory."""
        return str(self._base / run_id)
