"""Pure statistics over per-request records: derived latencies, pooled ITL gaps, distributions.

Conventions (the README's metric definitions are the prose version of this module):
- Percentiles use numpy's default "linear" method (type 7, as inference-perf does), always over
  raw values, never by combining per-shard percentiles.
- `std` is the population standard deviation (ddof=0, numpy's default).
- Null handling: a value that cannot be computed (a time never reached, output_tokens <= 1 for
  TPOT) is NaN here and left out of that metric; an empty distribution has count 0 and every
  other field null (None), never 0.
- ITL works on the flattened `chunk_offsets_us` values in bounded row slices: a run holds ~10^8
  chunks, so no Python loop per chunk and no full-size temporaries beyond the gap array itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "PERCENTILES",
    "Distribution",
    "chunk_token_sums",
    "derive_latencies_ns",
    "describe",
    "pooled_itl_us",
]

FloatArray = npt.NDArray[np.float64]

#: Every percentile we compute once per metric: inference-perf's default report list; the
#: summary.json STATS use the subset 50/90/95/99/99.9.
PERCENTILES: tuple[float, ...] = (0.1, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)

#: Rows per slice when walking list columns: bounds the temporaries (diffs, masks) to a few MB.
_SLICE_ROWS = 65_536
#: Elements per block when summing squares, so std never allocates a float copy of 10^8 gaps.
_BLOCK = 1 << 22


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


def _mean_std(values: npt.NDArray[np.number[Any]]) -> tuple[float, float]:
    """Mean and population std in float64, blockwise so no full-size float copy is made."""
    mean = float(np.mean(values, dtype=np.float64))
    squares = 0.0
    for start in range(0, len(values), _BLOCK):
        block = values[start : start + _BLOCK].astype(np.float64) - mean
        squares += float(np.dot(block, block))
    return mean, float(np.sqrt(squares / len(values)))


def describe(values: npt.NDArray[np.number[Any]]) -> Distribution:
    """Statistics of `values` (no NaN) in their own unit. Reorders `values` in place (partition)."""
    if len(values) == 0:
        return Distribution(0, None, None, None, None, dict.fromkeys(PERCENTILES))
    mean, std = _mean_std(values)
    low, high = float(values.min()), float(values.max())
    # overwrite_input: partition the caller's (throw-away) array instead of copying 10^8 gaps.
    points = np.percentile(values, PERCENTILES, overwrite_input=True)
    return Distribution(
        count=len(values),
        mean=mean,
        min=low,
        max=high,
        std=std,
        percentiles={q: float(v) for q, v in zip(PERCENTILES, points, strict=True)},
    )


def derive_latencies_ns(
    times: Mapping[str, FloatArray], output_tokens: FloatArray
) -> dict[str, FloatArray]:
    """Per-request latencies in ns (NaN where undefined) from the record times (NaN = null).

    ttft = first_token - sent; e2e = last_token - sent; tpot = (last_token - first_token) /
    (output_tokens - 1) for output_tokens > 1; ntpot = e2e / output_tokens for output_tokens > 0;
    scheduled_e2e = last_token - scheduled (coordinated-omission view); schedule_delay = sent -
    scheduled; request_latency = end - sent (failures' latency in the lifecycle report).
    """
    sent, first, last = times["sent_ns"], times["first_token_ns"], times["last_token_ns"]
    e2e = last - sent
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(output_tokens > 1, (last - first) / (output_tokens - 1), np.nan)
        ntpot = np.where(output_tokens > 0, e2e / output_tokens, np.nan)
    return {
        "ttft": first - sent,
        "tpot": tpot,
        "ntpot": ntpot,
        "e2e": e2e,
        "scheduled_e2e": last - times["scheduled_ns"],
        "schedule_delay": sent - times["scheduled_ns"],
        "request_latency": times["end_ns"] - sent,
    }


def _row_slices(columns: Sequence[pa.ChunkedArray]) -> Iterator[tuple[int, pa.ListArray]]:
    """(first row, slice) over the concatenated row order of several list columns."""
    row = 0
    for column in columns:
        for chunk in column.chunks:
            for start in range(0, len(chunk), _SLICE_ROWS):
                piece = chunk.slice(start, _SLICE_ROWS)
                yield row, piece
                row += len(piece)


def _lengths(piece: pa.ListArray) -> npt.NDArray[np.int64]:
    """Items per list, 0 for a null list (flatten() skips null lists too)."""
    lengths = pc.fill_null(pc.list_value_length(piece), 0)
    return np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)


def _gaps(piece: pa.ListArray) -> npt.NDArray[np.int32]:
    """Differences of consecutive items inside each list of `piece`, never across two lists."""
    values = piece.flatten().to_numpy(zero_copy_only=False)
    if len(values) < 2:
        return np.empty(0, dtype=np.int32)
    diffs = np.diff(values)
    ends = np.cumsum(_lengths(piece))
    # diffs[e - 1] spans the end of one list and the start of the next one: not a gap.
    crossing = ends[(ends > 0) & (ends < len(values))] - 1
    keep = np.ones(len(diffs), dtype=bool)
    keep[crossing] = False
    return np.asarray(diffs[keep], dtype=np.int32)


def pooled_itl_us(
    columns: Sequence[pa.ChunkedArray], keys: npt.NDArray[np.int64], groups: Iterable[int]
) -> tuple[npt.NDArray[np.int32], dict[int, tuple[int, int]]]:
    """Pooled chunk gaps (µs) of the rows whose key is in `groups`, one contiguous segment each.

    `columns` are `chunk_offsets_us` of every shard in row order, `keys` the group of each row
    (-1 = excluded, e.g. not ok). Returns the gap array and `{group: (start, stop)}`; filling a
    preallocated array segment by segment keeps the peak at one gap array.
    """
    wanted = sorted(set(groups))
    per_row = np.concatenate(
        [np.maximum(_lengths(p) - 1, 0) for _, p in _row_slices(columns)] or [np.empty(0, np.int64)]
    )
    sizes = [int(per_row[keys == g].sum()) for g in wanted]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    segments = {g: (int(starts[i]), int(starts[i + 1])) for i, g in enumerate(wanted)}
    cursor = {g: segments[g][0] for g in wanted}
    gaps = np.empty(int(starts[-1]), dtype=np.int32)
    for row, piece in _row_slices(columns):
        piece_keys = keys[row : row + len(piece)]
        for group in np.unique(piece_keys):
            if int(group) not in cursor:
                continue
            mask = piece_keys == group
            part = _gaps(piece if mask.all() else piece.filter(pa.array(mask)))
            at = cursor[int(group)]
            gaps[at : at + len(part)] = part
            cursor[int(group)] = at + len(part)
    return gaps, segments


def chunk_token_sums(columns: Sequence[pa.ChunkedArray]) -> FloatArray:
    """Sum of `chunk_tokens` per row; NaN where the list or any item in it is null (unknown)."""
    sums: list[FloatArray] = []
    for _, piece in _row_slices(columns):
        values = piece.flatten()
        counts = np.asarray(values.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
        nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=np.float64)
        lengths = _lengths(piece)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        total = np.concatenate([[0.0], np.cumsum(counts)])
        missing = np.concatenate([[0.0], np.cumsum(nulls)])
        row_sums = total[ends] - total[starts]
        unknown = (missing[ends] - missing[starts] > 0) | np.asarray(
            piece.is_null().to_numpy(zero_copy_only=False), dtype=bool
        )
        row_sums[unknown] = np.nan
        sums.append(row_sums)
    return np.concatenate(sums) if sums else np.empty(0, dtype=np.float64)
