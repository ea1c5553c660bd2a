"""The one-screen summary printed when a load run ends.

Read from the merged records with `steps.record_metrics`, the definitions aggregate uses, so
the headline numbers here (TTFT, ITL, schedule delay, achieved rate) are aggregate's numbers
for the same run; aggregate's summary.json is the full set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steps.record_metrics import (
    TIME_COLUMNS,
    FloatArray,
    achieved_rate,
    as_float,
    chunk_gaps,
    chunk_token_sums,
    in_flight,
    is_saturated,
    latencies_ns,
    ok_rows,
    output_token_mismatches,
    percentiles,
)
from steps.records import SATURATION_DELAY_MS, STATUSES

__all__ = ["RunSummary", "format_summary", "summarize"]

Pair = tuple[float | None, float | None]


@dataclass(frozen=True)
class RunSummary:
    """Headline numbers of a run (ms unless named otherwise)."""

    counts: dict[str, int]
    ttft_ms: Pair
    itl_ms: Pair
    schedule_delay_ms: Pair
    requested_rate: list[float | None]  # None: a closed-loop stage
    achieved_rate: list[float | None]
    #: per closed-loop stage: (stage, users asked, mean in flight, most in flight)
    concurrency: list[tuple[int, int, float | None, int]]
    output_sources: dict[str, int]
    output_mismatches: int
    prompt_mismatches: int
    client_cpu_s: float
    resent_requests: int  # resent once after a stale keep-alive close (steps.load.connection)

    @property
    def failed(self) -> int:
        """Requests that did not end `ok`."""
        return sum(n for s, n in self.counts.items() if s != "ok")


def _p50_p99(values_ms: FloatArray) -> Pair:
    """Median and p99 of the defined values (NaN = not reached); (None, None) without any."""
    values = values_ms[~np.isnan(values_ms)]
    if len(values) == 0:
        return None, None
    p50, p99 = percentiles(values, [50, 99])
    return float(p50), float(p99)


def _stage_rates(
    table: pa.Table, sent_ns: FloatArray, stages: Sequence[dict[str, Any]]
) -> list[float | None]:
    """Achieved rate per run.json stage: its sent requests per second of its send window."""
    stage_col = table.column("stage").to_numpy(zero_copy_only=False)
    return [
        achieved_rate(sent_ns[stage_col == st["stage"]], (st["send_end_ns"] - st["start_ns"]) / 1e9)
        for st in stages
    ]


def _stage_concurrency(
    table: pa.Table, times: dict[str, FloatArray], stages: Sequence[dict[str, Any]]
) -> list[tuple[int, int, float | None, int]]:
    """Delivered concurrency of each closed-loop stage: in flight over its whole window."""
    stage_col = table.column("stage").to_numpy(zero_copy_only=False)
    out = []
    for st in stages:
        if st.get("concurrency_level") is None:
            continue
        rows = stage_col == st["stage"]
        mean, most = in_flight(
            times["sent_ns"][rows], times["end_ns"][rows], st["start_ns"], st["end_ns"]
        )
        out.append((st["stage"], st["concurrency_level"], mean, most))
    return out


def summarize(
    table: pa.Table,
    stages: Sequence[dict[str, Any]],
    client_cpu_s: float,
    resent_requests: int = 0,
) -> RunSummary:
    """Headline numbers from the merged records, run.json's stage windows and the workers'
    counts (client CPU seconds since t0, resent requests)."""
    status = table.column("status").to_pylist()
    ok = ok_rows(table.column("status"))
    times = {name: as_float(table.column(name)) for name in TIME_COLUMNS}
    latencies = latencies_ns(times, as_float(table.column("output_tokens")))
    offsets = table.column("chunk_offsets_us").combine_chunks().filter(pa.array(ok))
    ok_table = table.filter(pa.array(ok))
    sources = ok_table.column("output_tokens_source").to_pylist()
    prompt_diff = pc.not_equal(
        ok_table.column("prompt_tokens"), ok_table.column("requested_input_tokens")
    )
    return RunSummary(
        counts={s: status.count(s) for s in STATUSES},
        ttft_ms=_p50_p99(latencies["ttft"][ok] / 1e6),
        itl_ms=_p50_p99(chunk_gaps(offsets) / 1e3),
        schedule_delay_ms=_p50_p99(latencies["schedule_delay"] / 1e6),  # NaN: never sent
        requested_rate=[None if st["rate"] is None else float(st["rate"]) for st in stages],
        achieved_rate=_stage_rates(table, times["sent_ns"], stages),
        concurrency=_stage_concurrency(table, times, stages),
        output_sources={s: sources.count(s) for s in sorted(set(sources), key=str)},
        output_mismatches=output_token_mismatches(
            as_float(table.column("output_tokens")),
            chunk_token_sums(table.column("chunk_tokens").combine_chunks()),
        ),
        prompt_mismatches=int(
            pc.sum(pc.cast(pc.fill_null(prompt_diff, False), pa.int64())).as_py() or 0
        ),
        client_cpu_s=client_cpu_s,
        resent_requests=resent_requests,
    )


def _ms(pair: Pair) -> str:
    return " / ".join("-" if v is None else f"{v:.2f}" for v in pair)


def format_summary(s: RunSummary) -> str:
    """The one-screen summary printed at the end of a run."""
    total = sum(s.counts.values())
    counts = "  ".join(f"{k} {v}" for k, v in s.counts.items() if v or k == "ok")
    if s.resent_requests:
        counts += f"; {s.resent_requests} resent after a stale keep-alive close"
    rates = ", ".join(
        f"stage {i}: {'-' if a is None else f'{a:.2f}'}/{'closed loop' if r is None else f'{r:g}'}"
        for i, (a, r) in enumerate(zip(s.achieved_rate, s.requested_rate, strict=True))
    )
    per_req = f"{s.client_cpu_s / total * 1e3:.2f} ms/request" if total else "-"
    lines = [
        f"requests        {total}  ({counts})",
        f"TTFT p50/p99    {_ms(s.ttft_ms)} ms",
        f"ITL p50/p99     {_ms(s.itl_ms)} ms",
        f"sched delay     p50/p99 {_ms(s.schedule_delay_ms)} ms",
        f"achieved/req'd  {rates} (requests/s sent)",
        *(
            f"concurrency     stage {st}: {'-' if mean is None else f'{mean:.2f}'} mean, "
            f"{most} most in flight of {users} users"
            for st, users, mean, most in s.concurrency
        ),
        f"output tokens   sources {s.output_sources or '-'}; usage vs chunk token_ids "
        f"mismatches {s.output_mismatches}; prompt_tokens != requested: {s.prompt_mismatches}",
        f"client CPU      {s.client_cpu_s:.2f} s ({per_req})",
    ]
    if is_saturated(s.schedule_delay_ms[1]):
        lines.append(
            f"WARNING         schedule delay p99 > {SATURATION_DELAY_MS:g} ms: the load "
            "generator could not keep up "
            "(give it more CPU or workers)"
        )
    return "\n".join(lines)
