"""Reading server_metrics.parquet: the shared figures as series, and their values over a window.

Aggregate (per-stage figures in summary.json) and the report (the server panel over time) read
the same rows the same way, so the reading lives here once (steps/server_metrics.py has the
file's columns and each server's names):

- `gauge_series`: a shared gauge per scrape round, summed over pods and label sets (running,
  waiting: requests in the whole deployment) or averaged (KV-cache usage: a fraction per
  replica), with the max over them too.
- `counter_increase`: how much a counter grew over a window, summed over series (a pod and its
  labels). A window starts at the last sample answered by its start and ends at the first
  sample asked at or after its end, so nothing counted inside it is missed (what it adds from the
  scrape interval around it is at most one interval's worth). A value lower than the one
  before is a counter reset (the server restarted): the increase restarts from 0, as
  Prometheus's `increase()` does.
- `histogram_window`: a histogram's bucket increases over a window (same rules, per bucket),
  turned into quantiles by linear interpolation inside a bucket, as Prometheus's
  `histogram_quantile()`.
Times are ns on the run's time line (`t_ns` of the first shard's t0), the records' clock.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from steps.errors import UsageError
from steps.server_metrics import SERVER_METRICS_SCHEMA, SHARED_METRICS, UP_METRIC

__all__ = [
    "HistogramWindow",
    "ServerSamples",
    "counter_increase",
    "gauge_series",
    "histogram_window",
    "read_server_metrics",
]

_COLUMNS = ("round", "t_ns", "t_end_ns", "pod", "metric", "labels", "value", "type")


@dataclass(frozen=True)
class ServerSamples:
    """The rows of one server_metrics.parquet, on the run's time line."""

    rows: pd.DataFrame  # columns _COLUMNS; t_ns shifted onto the run's time line

    def of(self, sample_names: tuple[str, ...]) -> pd.DataFrame:
        """Rows of the first of `sample_names` the server exported (empty when none)."""
        present = set(self.rows["metric"].unique())
        for name in sample_names:
            if name in present:
                return self.rows[self.rows["metric"] == name]
        return self.rows.iloc[0:0]

    def shared(self, name: str) -> pd.DataFrame:
        """Rows of SHARED_METRICS[name] (a histogram: its `_bucket`, `_sum`, `_count` rows)."""
        metric = SHARED_METRICS[name]
        if metric.kind != "histogram":
            return self.of(metric.samples)
        present = set(self.rows["metric"].unique())
        for family in metric.samples:
            if f"{family}_bucket" in present:
                names = {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
                return self.rows[self.rows["metric"].isin(names)]
        return self.rows.iloc[0:0]

    def scrape_counts(self) -> tuple[int, int, list[str]]:
        """(scrapes, failed scrapes, targets) from the synthetic `up` rows."""
        up = self.rows[self.rows["metric"] == UP_METRIC]
        return len(up), int((up["value"] == 0).sum()), sorted(up["pod"].unique().tolist())


def read_server_metrics(path: Path, shift_ns: int = 0) -> ServerSamples:
    """The file's rows with `t_ns` moved by `shift_ns` (its shard's t0 on the run's time
    line); a damaged file or one missing a column is a UsageError naming it."""
    try:
        table = pq.read_table(path, columns=list(_COLUMNS))
    except (pa.ArrowException, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"server metrics file '{path}' is not readable: {first_line}") from None
    for name in _COLUMNS:
        expected = SERVER_METRICS_SCHEMA.field(name).type
        found = table.schema.field(name).type
        if pa.types.is_dictionary(expected):
            expected = expected.value_type
        if pa.types.is_dictionary(found):
            found = found.value_type
        if found != expected:
            raise UsageError(
                f"server metrics file '{path}': column '{name}' has type {found}, expected "
                f"{expected} (steps.server_metrics.SERVER_METRICS_SCHEMA)"
            )
    frame = pd.DataFrame(
        {
            name: (
                table.column(name).to_numpy()
                if name in ("round", "t_ns", "t_end_ns", "value")
                else table.column(name).to_pandas().astype(str).to_numpy()
            )
            for name in _COLUMNS
        }
    )
    frame["t_ns"] = frame["t_ns"] + shift_ns
    frame["t_end_ns"] = frame["t_end_ns"] + shift_ns
    return ServerSamples(frame)


def gauge_series(rows: pd.DataFrame, how: str) -> pd.DataFrame:
    """Per round: `t_ns` (the round's first scrape) and `value` (`how` = "sum" or "mean" over
    every series in it) and `max` (over them)."""
    if rows.empty:
        return pd.DataFrame({"t_ns": [], "value": [], "max": []})
    grouped = rows.groupby("round", sort=True)
    return pd.DataFrame(
        {
            "t_ns": grouped["t_ns"].min(),
            "value": grouped["value"].sum() if how == "sum" else grouped["value"].mean(),
            "max": grouped["value"].max(),
        }
    ).reset_index(drop=True)


def _series_increase(times: np.ndarray, values: np.ndarray) -> float:
    """A counter's increase over samples in time order, resets handled."""
    if len(values) < 2:
        return 0.0
    steps = np.diff(values)
    # A drop is a restart from 0: the later value is what was counted since.
    return float(np.where(steps >= 0, steps, values[1:]).sum())


def _window_rows(rows: pd.DataFrame, start_ns: float, end_ns: float) -> pd.DataFrame:
    """Each series' samples from the last one answered by `start_ns` to the first one asked
    at or after `end_ns` (a series: pod + labels): the server's values at both ends are from
    outside the window, so the window's increase is all in."""
    keep = []
    for _, series in rows.groupby(["pod", "labels"], sort=False):
        t = series["t_ns"].to_numpy()
        order = np.argsort(t, kind="stable")
        t, t_end = t[order], series["t_end_ns"].to_numpy()[order]
        first = max(int(np.searchsorted(t_end, start_ns, side="right")) - 1, 0)
        last = min(int(np.searchsorted(t, end_ns, side="left")), len(t) - 1)
        if last > first:
            keep.append(series.iloc[order[first : last + 1]])
    return pd.concat(keep) if keep else rows.iloc[0:0]


def counter_increase(rows: pd.DataFrame, start_ns: float, end_ns: float) -> float | None:
    """The counter's increase over the window summed over its series (None: no samples)."""
    if rows.empty:
        return None
    window = _window_rows(rows, start_ns, end_ns)
    if window.empty:
        return None
    total = 0.0
    for _, series in window.groupby(["pod", "labels"], sort=False):
        total += _series_increase(series["t_ns"].to_numpy(), series["value"].to_numpy())
    return total


@dataclass(frozen=True)
class HistogramWindow:
    """A histogram's observations within a window: bucket upper bounds (s, +inf last) with
    cumulative counts, and the sum and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    sum: float
    count: float

    @property
    def mean(self) -> float | None:
        """Mean observation (s); None without any."""
        return self.sum / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        """Prometheus `histogram_quantile(q)`: linear inside the bucket holding rank q*count,
        the lower bound of the first bucket taken as 0; in the +Inf bucket, the highest finite
        bound. None without observations."""
        total = self.cumulative[-1] if self.cumulative else 0.0
        if total <= 0:
            return None
        rank = q * total
        below, lower = 0.0, 0.0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=True):
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            below, lower = cumulative, bound
        return lower


def _le(labels: str) -> float:
    value = json.loads(labels).get("le", "+Inf")
    return float(value)


def histogram_window(rows: pd.DataFrame, start_ns: float, end_ns: float) -> HistogramWindow | None:
    """The histogram's bucket, sum and count increases over the window, summed over pods and
    label sets; None when the server exports none of it."""
    buckets = rows[rows["metric"].str.endswith("_bucket")]
    if buckets.empty:
        return None
    by_bound: dict[float, float] = {}
    for labels, series in buckets.groupby("labels", sort=False):
        bound = _le(str(labels))
        increase = counter_increase(series, start_ns, end_ns) or 0.0
        by_bound[bound] = by_bound.get(bound, 0.0) + increase
    bounds = tuple(sorted(by_bound))
    sums = rows[rows["metric"].str.endswith("_sum")]
    counts = rows[rows["metric"].str.endswith("_count")]
    return HistogramWindow(
        bounds=bounds,
        cumulative=tuple(by_bound[b] for b in bounds),
        sum=counter_increase(sums, start_ns, end_ns) or 0.0,
        count=counter_increase(counts, start_ns, end_ns) or 0.0,
    )
