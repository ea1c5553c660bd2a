"""Statistics over per-request metrics: distributions, pooled ITL histograms, per-run scans.

What each metric is (latencies, chunk gaps, chunk token sums) is defined in
`steps.record_metrics`; this module turns those values into the summary's statistics.
Conventions:
- Percentiles are `steps.record_metrics.percentiles` (numpy's "linear" method, type 7, as
  inference-perf does), always over raw values, never by combining per-shard percentiles.
- `std` is the population standard deviation (ddof=0, numpy's default).
- Null handling: a value that cannot be computed (a time never reached, output_tokens <= 1 for
  TPOT) is NaN here and left out of that metric; an empty distribution has count 0 and every
  other field null (None), never 0.
- ITL streams the flattened `chunk_offsets_us` values batch by batch into an exact integer
  histogram: a run holds ~10^8 chunks, so no Python loop per chunk and no array of all gaps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steps.record_metrics import FloatArray, chunk_gaps, chunk_token_sums, percentiles

__all__ = [
    "PERCENTILES",
    "Distribution",
    "IntHistogram",
    "describe",
    "scan_itl",
    "scan_token_sums",
]

#: Every percentile we compute once per metric: inference-perf's default report list; the
#: summary.json STATS use the subset 50/90/95/99/99.9.
PERCENTILES: tuple[float, ...] = (0.1, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


@dataclass(frozen=True)
class Distribution:
    """Summary statistics of one metric in one unit; every field but count is None when empty."""

    count: int
    mean: float | None
    min: float | None
    max: float | None
    std: float | None
    percentiles: Mapping[float, float | None]

    def divided(self, divisor: float) -> Distribution:
        """The same distribution in a unit `divisor` times larger (ns -> ms: 1e6)."""

        def _div(value: float | None) -> float | None:
            return None if value is None else value / divisor

        return Distribution(
            count=self.count,
            mean=_div(self.mean),
            min=_div(self.min),
            max=_div(self.max),
            std=_div(self.std),
            percentiles={q: _div(v) for q, v in self.percentiles.items()},
        )


def describe(values: npt.NDArray[np.number[Any]]) -> Distribution:
    """Statistics of `values` (no NaN) in their own unit. Reorders `values` in place (partition)."""
    if len(values) == 0:
        return Distribution(0, None, None, None, None, dict.fromkeys(PERCENTILES))
    # Arrow's kernels: one pass each, numerically stable variance, no float copy of 10^8 gaps.
    wrapped = pa.array(values)
    extremes = pc.min_max(wrapped)
    mean, variance = pc.mean(wrapped).as_py(), pc.variance(wrapped, ddof=0).as_py()
    # overwrite_input: partition the caller's (throw-away) array instead of copying it.
    points = percentiles(values, PERCENTILES, overwrite_input=True)
    return Distribution(
        count=len(values),
        mean=float(mean),
        min=float(extremes["min"].as_py()),
        max=float(extremes["max"].as_py()),
        std=float(np.sqrt(variance)),
        percentiles={q: float(v) for q, v in zip(PERCENTILES, points, strict=True)},
    )


class IntHistogram:
    """Exact distribution of a stream of integers (chunk gaps in µs) in O(range) memory.

    A run holds ~10^8 gaps: keeping them to partition would cost GiBs and seconds. Counting each
    value in [0, cap) and keeping the rare values outside (negative, or a stall over `cap` µs)
    as raw numbers gives the exact order statistics, so percentiles equal numpy's on the raw
    gaps. Histograms of several stages add up to the run's without touching a gap again.
    """

    def __init__(self, cap: int = 1 << 24) -> None:
        self._cap = cap
        self._counts = np.zeros(0, dtype=np.int64)
        self._outside: list[npt.NDArray[np.int64]] = []

    def add(self, values: npt.NDArray[np.int64]) -> None:
        """Count `values` in."""
        if len(values) == 0:
            return
        inside = values
        extremes = pc.min_max(pa.array(values, from_pandas=False))  # one pass, no copy
        if extremes["min"].as_py() < 0 or extremes["max"].as_py() >= self._cap:
            mask = (values >= 0) & (values < self._cap)
            self._outside.append(values[~mask])
            inside = values[mask]
        if len(inside) == 0:
            return
        counted = np.bincount(inside)
        if len(counted) > len(self._counts):
            grown = np.zeros(max(len(counted), 2 * len(self._counts)), dtype=np.int64)
            grown[: len(self._counts)] = self._counts
            self._counts = grown
        self._counts[: len(counted)] += counted

    def merge(self, other: IntHistogram) -> None:
        """Add every value counted by `other`."""
        if len(other._counts) > len(self._counts):
            grown = other._counts.copy()
            grown[: len(self._counts)] += self._counts
            self._counts = grown
        else:
            self._counts[: len(other._counts)] += other._counts
        self._outside.extend(other._outside)

    def describe(self) -> Distribution:
        """The same statistics as `describe(raw values)`, from the counts."""
        outside = np.sort(np.concatenate([np.empty(0, np.int64), *self._outside]))
        low, high = outside[outside < 0], outside[outside >= 0]
        bins = np.flatnonzero(self._counts)
        weights = self._counts[bins]
        n = len(outside) + int(weights.sum())
        if n == 0:
            return describe(np.empty(0, dtype=np.int64))
        # Python ints: exact sums however many gaps there are.
        mean = (int(np.dot(bins, weights)) + int(outside.sum())) / n
        squares = float(np.dot(weights, (bins - mean) ** 2)) + float(((outside - mean) ** 2).sum())
        ends = np.cumsum(weights) + len(low)

        def at(rank: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
            """The value of sorted rank `rank` (0-based) of the virtual sorted gap array."""
            inner = np.clip(rank, len(low), len(low) + int(weights.sum()) - 1)
            from_bins = bins[np.searchsorted(ends, inner, side="right")] if len(bins) else inner
            from_low = low[np.clip(rank, 0, max(len(low) - 1, 0))] if len(low) else from_bins
            above = rank - (n - len(high))
            from_high = high[np.clip(above, 0, max(len(high) - 1, 0))] if len(high) else from_bins
            picked = np.where(rank < len(low), from_low, np.where(above >= 0, from_high, from_bins))
            return picked.astype(np.float64)

        # numpy's "linear" method: virtual index q (n - 1), lerp as numpy._lerp does.
        virtual = np.asarray(PERCENTILES) / 100.0 * (n - 1)
        below = np.floor(virtual).astype(np.int64)
        fraction = virtual - below
        a, b = at(below), at(np.minimum(below + 1, n - 1))
        diff = b - a
        points = np.where(fraction >= 0.5, b - diff * (1 - fraction), a + diff * fraction)
        ranks = np.array([0, n - 1], dtype=np.int64)
        extremes = at(ranks)
        return Distribution(
            count=n,
            mean=mean,
            min=float(extremes[0]),
            max=float(extremes[1]),
            std=float(np.sqrt(squares / n)),
            percentiles={q: float(v) for q, v in zip(PERCENTILES, points, strict=True)},
        )


def scan_token_sums(batches: Iterable[pa.RecordBatch]) -> FloatArray:
    """Sum of `chunk_tokens` per row over batches holding that column, in row order."""
    sums = [chunk_token_sums(batch.column("chunk_tokens")) for batch in batches]
    return np.concatenate(sums) if sums else np.empty(0, dtype=np.float64)


def scan_itl(batches: Iterable[pa.RecordBatch]) -> dict[int, IntHistogram]:
    """Pooled chunk gaps (µs) of ok rows per stage, from batches of (stage, status, offsets).

    Ok rows only: ITL is a latency, and a failed stream's last gap would be the failure.
    """
    itl: dict[int, IntHistogram] = {}
    for batch in batches:
        offsets = batch.column("chunk_offsets_us")
        stage = batch.column("stage").to_numpy(zero_copy_only=False)
        ok = pc.equal(batch.column("status"), "ok").to_numpy(zero_copy_only=False)
        for value in np.unique(stage[ok]):
            rows = ok & (stage == value)
            piece = offsets if rows.all() else offsets.filter(pa.array(rows))
            itl.setdefault(int(value), IntHistogram()).add(chunk_gaps(piece))
    return itl
