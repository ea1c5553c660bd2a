"""Regression check against the previous run of the same scenario, model and target.

Comparison is pure (`compare_runs`). Finding the previous run goes through `RunHistory`, which
S3 (`steps.report.upload.S3History`) and a local directory (`LocalHistory`) both implement with
the same layout, `{root}/{scenario}/{model}/{run_id}/summary.json`: run ids sort by time
(`YYYYMMDDTHHMMSSZ-<hex>`), so "previous" is the greatest run id below the current one whose
summary names the same base_url (one prefix may hold runs against several endpoints).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from steps.report.sla import summary_value

__all__ = [
    "DEFAULT_TOLERANCE",
    "REGRESSION_METRICS",
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

Direction = Literal["lower", "higher"]
Status = Literal["regression", "improvement", "unchanged", "n/a"]

#: Metric name -> (path in the summary's `overall` group, which direction is better).
REGRESSION_METRICS: dict[str, tuple[tuple[str, ...], Direction]] = {
    "ttft_p50_ms": (("latency_ms", "ttft", "p50"), "lower"),
    "ttft_p99_ms": (("latency_ms", "ttft", "p99"), "lower"),
    "itl_p50_ms": (("latency_ms", "itl", "p50"), "lower"),
    "itl_p99_ms": (("latency_ms", "itl", "p99"), "lower"),
    "e2e_p50_ms": (("latency_ms", "e2e", "p50"), "lower"),
    "e2e_p99_ms": (("latency_ms", "e2e", "p99"), "lower"),
    "output_tokens_per_s": (("throughput", "output_tokens_per_s"), "higher"),
}


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
    summary: Mapping[str, Any]


class RunHistory(Protocol):
    """Earlier runs of one scenario and model (S3 prefix or local directory)."""

    def run_ids(self) -> list[str]:
        """Ids of the runs stored for this scenario and model (any order)."""
        ...

    def read_summary(self, run_id: str) -> Mapping[str, Any] | None:
        """That run's summary.json, or None when it has none or it is unreadable."""
        ...

    def location(self, run_id: str) -> str:
        """Where that run lives (URI or path), for the report."""
        ...


def _status(change: float, direction: Direction, tolerance: float) -> Status:
    worse = change if direction == "lower" else -change
    if worse > tolerance:
        return "regression"
    if worse < -tolerance:
        return "improvement"
    return "unchanged"


def compare_runs(
    current: Mapping[str, Any], previous: Mapping[str, Any], tolerance: float
) -> list[MetricDelta]:
    """Key-metric deltas between two summaries' `overall` groups (tolerance 0.10 = 10 %)."""
    deltas = []
    for name, (path, direction) in REGRESSION_METRICS.items():
        now = summary_value(current, path)
        before = summary_value(previous, path)
        if now is None or before is None or before == 0:
            deltas.append(MetricDelta(name, before, now, None, "n/a"))
            continue
        change = (now - before) / before
        deltas.append(MetricDelta(name, before, now, change, _status(change, direction, tolerance)))
    return deltas


def find_previous_run(
    history: RunHistory, run_id: str, base_url: str, max_candidates: int = MAX_CANDIDATES
) -> PreviousRun | None:
    """The newest stored run older than `run_id` whose summary has the same base_url."""
    older = sorted((rid for rid in history.run_ids() if rid < run_id), reverse=True)
    for candidate in older[:max_candidates]:
        summary = history.read_summary(candidate)
        if summary is None:
            continue
        run = summary.get("run")
        if isinstance(run, Mapping) and run.get("base_url") == base_url:
            return PreviousRun(candidate, history.location(candidate), summary)
    return None


class LocalHistory:
    """Runs kept on a filesystem with the S3 layout (`--history-dir`, or a synced bucket copy)."""

    def __init__(self, root: Path, scenario: str, model: str) -> None:
        self._base = root / scenario / model

    def run_ids(self) -> list[str]:
        """Subdirectories holding a summary.json."""
        if not self._base.is_dir():
            return []
        return [p.name for p in self._base.iterdir() if (p / "summary.json").is_file()]

    def read_summary(self, run_id: str) -> Mapping[str, Any] | None:
        """Parsed summary.json, None when it is not JSON (a half-written run is skipped)."""
        try:
            data = json.loads((self._base / run_id / "summary.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def location(self, run_id: str) -> str:
        """The run's directory."""
        return str(self._base / run_id)
