"""What a record means: the one home of every metric read from the per-request records.

The load step's end summary, aggregate and the report's plots all read records.parquet; each
metric is defined here once (the README's metric table is the prose version), vectorised over
Arrow/numpy columns so a 10^6-row run costs array operations, never a Python loop per row:

- latencies (`latencies_ns`, `ttft_ns`): ttft, e2e, tpot, ntpot, scheduled_e2e, schedule_delay,
  request_latency, from the record times; NaN where a time was never reached (a null column);
- which rows a latency describes (`LATENCIES_OVER_SENT`, `ok_rows`): the server's latencies over
  ok requests, the schedule delay over every request that was sent;
- chunk gaps (`chunk_gaps`) for ITL, and the tokens the chunks carried (`chunk_token_sums`),
  whose disagreement with the usage count is `output_token_mismatches`;
- percentiles (`percentiles`): numpy's linear method (type 7, as inference-perf), over raw
  values, the one quantile definition every reader uses;
- the time line (`on_time_line`): each shard's times are ns since its own t0, `wall_start_ns`
  puts them on one line whose origin the caller picks (the earliest shard's t0);
- the achieved rate (`achieved_rate`): requests *sent* per second of the send window;
- per-request SLOs (`Slo`, `slo_met`): a request meets them when it is ok and each bound that is
  set holds; `goodput` is such requests per second of the same send window, `slo_attainment`
  their fraction of all requests (vLLM bench, aiperf and inference-perf use the same knobs);
- shares and rates (`share`, `per_second`): a fraction or an amount per second of a window,
  None (not 0) when the whole or the window is empty;
- saturation (`is_saturated`): the load generator, not the server, shaped the latencies;
- prefix-cache hits (`cached_tokens_ratio`): cached prompt tokens over the prompt tokens of the
  requests whose server said how many were cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steps.records import SATURATION_DELAY_MS

__all__ = [
    "LATENCIES_OVER_SENT",
    "TIME_COLUMNS",
    "FloatArray",
    "Slo",
    "achieved_rate",
    "as_float",
    "cached_tokens_ratio",
    "chunk_gaps",
    "chunk_token_sums",
    "goodput",
    "in_flight",
    "is_saturated",
    "latencies_ns",
    "ok_rows",
    "on_time_line",
    "output_token_mismatches",
    "per_second",
    "percentiles",
    "share",
    "slo_attainment",
    "slo_met",
    "ttft_ns",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
Column: TypeAlias = pa.Array | pa.ChunkedArray

#: The record times (ns since the shard's t0; steps/records.py says what each one marks).
TIME_COLUMNS = ("scheduled_ns", "sent_ns", "first_token_ns", "last_token_ns", "end_ns")

#: Latencies that describe the client, whatever the server answered: taken over every request
#: that was sent (NaN drops the others). Every other latency is a server's answer time and is
#: taken over ok requests only: a failed request's "e2e" is its failure, not a latency.
LATENCIES_OVER_SENT = frozenset({"schedule_delay"})

_NS_PER_S = 1e9


def as_float(column: Column) -> FloatArray:
    """Integers as float64 with NaN for null: the metrics read NaN as 'not reached/unknown'."""
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def ok_rows(status: Column) -> npt.NDArray[np.bool_]:
    """Mask of the rows whose request completed (`status == "ok"`)."""
    return np.asarray(pc.equal(status, "ok").to_numpy(zero_copy_only=False), dtype=np.bool_)


def on_time_line(
    table: pa.Table | pa.RecordBatch, origin_ns: int, names: Sequence[str] = TIME_COLUMNS
) -> dict[str, FloatArray]:
    """The `names` time columns of `table` in ns since epoch `origin_ns` (NaN for null).

    Each row's times count from its own shard's t0; `wall_start_ns` (epoch ns of that t0) shifts
    them onto the caller's line. The shift is taken in int64 first: epoch ns (~1.8e18) lose
    ~256 ns when cast to float64, times since one origin lose nothing.
    """
    shift = as_float(pc.subtract(table.column("wall_start_ns"), pa.scalar(origin_ns, pa.int64())))
    return {name: as_float(table.column(name)) + shift for name in names}


@overload
def ttft_ns(sent_ns: int, first_token_ns: int) -> int: ...
@overload
def ttft_ns(sent_ns: FloatArray, first_token_ns: FloatArray) -> FloatArray: ...
def ttft_ns(sent_ns: Any, first_token_ns: Any) -> Any:
    """Time to first token (ns): first content chunk - send, for one request or arrays of them.

    `sent_ns` is taken just before the request bytes are written, so waiting for a connection
    is schedule delay, not TTFT.
    """
    return first_token_ns - sent_ns


def latencies_ns(
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
        "ttft": ttft_ns(sent, first),
        "tpot": tpot,
        "ntpot": ntpot,
        "e2e": e2e,
        "scheduled_e2e": last - times["scheduled_ns"],
        "schedule_delay": sent - times["scheduled_ns"],
        "request_latency": times["end_ns"] - sent,
    }


def _lengths(piece: pa.ListArray) -> IntArray:
    """Items per list, 0 for a null list (flatten() skips null lists too)."""
    lengths = pc.fill_null(pc.list_value_length(piece), 0)
    return np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)


def chunk_gaps(piece: pa.ListArray) -> IntArray:
    """Gaps (µs) between consecutive content chunks of each request in `piece`, pooled.

    `piece` holds `chunk_offsets_us` lists; a gap is never taken across two requests. Pooled
    over ok requests this is ITL (a chunk may carry several tokens: vLLM coalesces).
    """
    # int64: offsets are int32 µs, their difference may not fit int32 in a corrupt file.
    values: IntArray = piece.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = _lengths(piece)
    if len(values) < 2:
        return np.empty(0, dtype=np.int64)
    width = int(lengths[0])
    if width > 1 and (lengths == width).all():
        # Every list equally long (fixed output length): one strided subtraction, no masks.
        matrix = values.reshape(len(lengths), width)
        gaps: IntArray = np.subtract(matrix[:, 1:], matrix[:, :-1]).ravel()
        return gaps
    diffs = np.diff(values)
    ends = np.cumsum(lengths)
    # diffs[e - 1] spans the end of one list and the start of the next one: not a gap.
    crossing = ends[(ends > 0) & (ends < len(values))] - 1
    keep = np.ones(len(diffs), dtype=bool)
    keep[crossing] = False
    kept: IntArray = diffs[keep]
    return kept


def chunk_token_sums(piece: pa.ListArray) -> FloatArray:
    """Tokens the content chunks carried, per request of a `chunk_tokens` piece.

    NaN where the list or any item in it is null: the server did not say, which is unknown,
    not 0. Compared with `output_tokens` (usage) this counts the output token mismatches.
    """
    values = piece.flatten()
    lengths = _lengths(piece)
    starts = np.cumsum(lengths) - lengths
    filled = lengths > 0
    sums = np.zeros(len(piece), dtype=np.float64)
    if filled.any():
        counts = (values.fill_null(0) if values.null_count else values).to_numpy(
            zero_copy_only=False
        )
        sums[filled] = np.add.reduceat(counts, starts[filled], dtype=np.int64)
        if values.null_count:
            nulls = values.is_null().to_numpy(zero_copy_only=False).view(np.int8)
            has_null = np.add.reduceat(nulls, starts[filled], dtype=np.int64) > 0
            sums[np.flatnonzero(filled)[has_null]] = np.nan
    sums[piece.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return sums


def output_token_mismatches(output_tokens: FloatArray, chunk_token_sums: FloatArray) -> int:
    """Rows whose usage count differs from the tokens their chunks carried (both known, NaN not).

    Arguments are aligned per row: `output_tokens` as `as_float` reads it, the sums as
    `chunk_token_sums` gives them.
    """
    known = ~np.isnan(output_tokens) & ~np.isnan(chunk_token_sums)
    return int(np.count_nonzero(output_tokens[known] != chunk_token_sums[known]))


def percentiles(
    values: npt.NDArray[np.number[Any]], points: Sequence[float], overwrite_input: bool = False
) -> FloatArray:
    """Percentiles `points` (0..100) of `values` (no NaN, not empty) in their own unit.

    numpy's default "linear" method (type 7, as inference-perf), over raw values, never combined
    from per-shard percentiles. `overwrite_input` lets numpy partition a throw-away array in
    place instead of copying it (10^8 values in aggregate).
    """
    points_out: FloatArray = np.percentile(values, points, overwrite_input=overwrite_input)
    return points_out


def share(part: int, whole: int) -> float | None:
    """`part` / `whole`; None (unknown, not 0) when there is no whole."""
    return part / whole if whole else None


def cached_tokens_ratio(cached: FloatArray, prompt: FloatArray) -> float | None:
    """Share of prompt tokens served from the prefix cache, over the rows where the server gave
    both counts (NaN = not said); None when none did. Token-weighted, as vLLM's hit rate is."""
    known = ~np.isnan(cached) & ~np.isnan(prompt)
    return share(int(cached[known].sum()), int(prompt[known].sum()))


def per_second(amount: float, window_s: float | None) -> float | None:
    """`amount` per second of a window (1/s); None for a missing or empty window."""
    return amount / window_s if window_s else None


def _per_send_window(count: int, sent_ns: FloatArray, send_window_s: float | None) -> float | None:
    """`count` per second of the send window; without one, scaled to the span of the sends."""
    sent = np.count_nonzero(~np.isnan(sent_ns))
    if send_window_s:
        return count / send_window_s
    if sent < 2:
        return None
    span_s = (float(np.nanmax(sent_ns)) - float(np.nanmin(sent_ns))) / _NS_PER_S
    # (sent - 1) intervals span the sends: the rate of sends, and `count` in proportion.
    return (sent - 1) / span_s * (count / sent) if span_s > 0 else None


def achieved_rate(sent_ns: FloatArray, send_window_s: float | None) -> float | None:
    """Requests sent per second of the send window (1/s); None when it cannot be known.

    Sent = the request bytes were written (`sent_ns` not NaN): the rate the server was offered.
    A request that never got a connection (connect_error, or a timeout or cancel while
    connecting) was not sent and does not count, so failing connections show as an achieved
    rate below the requested one; the error counts say why. The send window is the stage's
    (run.json `start_ns` .. `send_end_ns`); without one (no run.json), (n - 1) / (last send -
    first send), the rate the sends themselves span.
    """
    return _per_send_window(int(np.count_nonzero(~np.isnan(sent_ns))), sent_ns, send_window_s)


@dataclass(frozen=True)
class Slo:
    """Per-request service-level objectives in ms; None = that bound is not part of the SLO."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    @property
    def is_set(self) -> bool:
        """At least one bound: without any, goodput is not defined (null, as vLLM bench)."""
        return any(v is not None for v in (self.ttft_ms, self.tpot_ms, self.e2e_ms))


def in_flight(
    sent_ns: FloatArray, end_ns: FloatArray, start_ns: float, stop_ns: float
) -> tuple[float | None, int]:
    """Requests in flight (sent, not yet ended) over [start_ns, stop_ns]: the time average
    and the most at once. A request is in flight from `sent_ns` to `end_ns`; one never sent is
    never in flight. The delivered concurrency of a closed-loop stage; by Little's law also
    throughput x mean latency over the same window."""
    sent = ~np.isnan(sent_ns) & ~np.isnan(end_ns)
    begin, end = sent_ns[sent], end_ns[sent]
    span = stop_ns - start_ns
    if span <= 0 or len(begin) == 0:
        return None, 0
    overlap = np.clip(np.minimum(end, stop_ns) - np.maximum(begin, start_ns), 0.0, None)
    times = np.concatenate([begin, end])
    steps = np.concatenate([np.ones(len(begin)), -np.ones(len(end))])
    order = np.lexsort((steps, times))  # at equal times an end before a send: never inflated
    return float(overlap.sum() / span), int(np.cumsum(steps[order]).max())


def slo_met(
    latencies: Mapping[str, FloatArray], ok: npt.NDArray[np.bool_], slo: Slo
) -> npt.NDArray[np.bool_]:
    """Mask of the requests that are ok and within every set bound (`latencies` in ns).

    A failed request never meets the SLO. TPOT is NaN for a one-token answer: it has no
    inter-token time, so it cannot break a TPOT bound (vLLM bench counts it as 0).
    """
    met = ok.copy()
    for name, bound_ms in (("ttft", slo.ttft_ms), ("tpot", slo.tpot_ms), ("e2e", slo.e2e_ms)):
        if bound_ms is None:
            continue
        values = latencies[name]
        within = values <= bound_ms * 1e6
        met &= within | (np.isnan(values) if name == "tpot" else False)
    return met


def goodput(
    met: npt.NDArray[np.bool_], sent_ns: FloatArray, send_window_s: float | None
) -> float | None:
    """Requests meeting the SLO per second of the send window (1/s), as `achieved_rate` counts."""
    return _per_send_window(int(np.count_nonzero(met)), sent_ns, send_window_s)


def slo_attainment(met: npt.NDArray[np.bool_]) -> float | None:
    """Fraction of all requests (failed ones included) that met the SLO; None without rows."""
    return share(int(np.count_nonzero(met)), len(met))


def is_saturated(schedule_delay_p99_ms: float | None) -> bool:
    """Schedule delay p99 above SATURATION_DELAY_MS: the client, not the server, set the pace."""
    return schedule_delay_p99_ms is not None and schedule_delay_p99_ms > SATURATION_DELAY_MS
