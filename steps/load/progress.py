"""What the user sees while the load runs, and the one-screen summary at the end.

On a TTY: one live line rewritten in place (sent/done/errors, rolling TTFT p50). Otherwise
(Argo pod logs): a plain log line every `log_interval_s`. The summary is computed from the
merged records table, the same data the aggregate step reads, so the two cannot disagree on
what was recorded.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steps.records import SATURATION_DELAY_MS, STATUSES

__all__ = ["Progress", "RunSummary", "format_summary", "summarize"]

log = logging.getLogger(__name__)

_ROLLING = 200


class Progress:
    """Aggregates workers' progress messages and shows them."""

    def __init__(
        self, total: int, stream: TextIO | None = None, log_interval_s: float = 10.0
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.interval_s = 0.5 if self.tty else log_interval_s
        self._per_worker: dict[int, tuple[int, int, int]] = {}
        self._ttfts: deque[float] = deque(maxlen=_ROLLING)
        self._last_show = 0.0

    def update(
        self, worker: int, sent: int, done: int, errors: int, ttfts: Sequence[float]
    ) -> None:
        """Take one worker's cumulative counters and its new TTFT samples (ms)."""
        self._per_worker[worker] = (sent, done, errors)
        self._ttfts.extend(ttfts)

    def line(self) -> str:
        """The current progress line."""
        sent = sum(v[0] for v in self._per_worker.values())
        done = sum(v[1] for v in self._per_worker.values())
        errors = sum(v[2] for v in self._per_worker.values())
        ttft = f"{float(np.median(self._ttfts)):.1f} ms" if self._ttfts else "-"
        return (
            f"sent {sent}/{self.total}  done {done}  errors {errors}  "
            f"in flight {sent - done}  TTFT p50 (last {len(self._ttfts)}) {ttft}"
        )

    def show(self, now_s: float, force: bool = False) -> None:
        """Print the line if the interval passed (TTY: in place; else: a log line)."""
        if not force and now_s - self._last_show < self.interval_s:
            return
        self._last_show = now_s
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()
        else:
            log.info("%s", self.line())

    def close(self) -> None:
        """End the live line so the summary starts on its own line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class RunSummary:
    """Headline numbers of a run (ms unless named otherwise)."""

    counts: dict[str, int]
    ttft_ms: tuple[float | None, float | None]
    itl_ms: tuple[float | None, float | None]
    schedule_delay_ms: tuple[float | None, float | None]
    requested_rate: list[float]
    achieved_rate: list[float | None]
    output_sources: dict[str, int]
    output_mismatches: int
    prompt_mismatches: int
    client_cpu_s: float

    @property
    def failed(self) -> int:
        """Requests that did not end `ok`."""
        return sum(n for s, n in self.counts.items() if s != "ok")


def _p50_p99(values: Any) -> tuple[float | None, float | None]:
    if len(values) == 0:
        return None, None
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99)


def _itl_ms(table: pa.Table) -> Any:
    """Gaps between consecutive content chunks, pooled over requests (ms)."""
    offsets = table.column("chunk_offsets_us").combine_chunks()
    values = pc.list_flatten(offsets).to_numpy(zero_copy_only=False).astype(np.int64)
    parents = pc.list_parent_indices(offsets).to_numpy(zero_copy_only=False)
    if len(values) < 2:
        return np.empty(0)
    same = parents[1:] == parents[:-1]
    return np.diff(values)[same] / 1e3


def summarize(table: pa.Table, stages: Sequence[dict[str, Any]], client_cpu_s: float) -> RunSummary:
    """Headline numbers from the merged records and run.json's stage windows."""
    status = table.column("status").to_pylist()
    counts = {s: status.count(s) for s in STATUSES}
    ok = table.filter(pc.equal(table.column("status"), "ok"))
    sent = table.filter(pc.is_valid(table.column("sent_ns")))

    def col(t: pa.Table, name: str) -> Any:
        return t.column(name).to_numpy(zero_copy_only=False).astype(np.int64)

    ttft = (col(ok, "first_token_ns") - col(ok, "sent_ns")) / 1e6 if ok.num_rows else []
    delay = (col(sent, "sent_ns") - col(sent, "scheduled_ns")) / 1e6 if sent.num_rows else []
    stage_col = table.column("stage").to_numpy(zero_copy_only=False)
    achieved: list[float | None] = []
    for st in stages:
        window_s = (st["send_end_ns"] - st["start_ns"]) / 1e9
        n = int(np.count_nonzero(stage_col == st["stage"]))
        achieved.append(n / window_s if window_s > 0 else None)
    sources = ok.column("output_tokens_source").to_pylist()
    mismatch = pc.sum(
        pc.cast(pc.fill_null(table.column("output_tokens_mismatch"), False), pa.int64())
    )
    prompt_diff = pc.sum(
        pc.cast(
            pc.fill_null(
                pc.not_equal(ok.column("prompt_tokens"), ok.column("requested_input_tokens")),
                False,
            ),
            pa.int64(),
        )
    )
    return RunSummary(
        counts=counts,
        ttft_ms=_p50_p99(ttft),
        itl_ms=_p50_p99(_itl_ms(ok) if ok.num_rows else []),
        schedule_delay_ms=_p50_p99(delay),
        requested_rate=[float(st["rate"]) for st in stages],
        achieved_rate=achieved,
        output_sources={s: sources.count(s) for s in sorted(set(sources), key=str)},
        output_mismatches=int(mismatch.as_py() or 0),
        prompt_mismatches=int(prompt_diff.as_py() or 0),
        client_cpu_s=client_cpu_s,
    )


def _ms(pair: tuple[float | None, float | None]) -> str:
    return " / ".join("-" if v is None else f"{v:.2f}" for v in pair)


def format_summary(s: RunSummary) -> str:
    """The one-screen summary printed at the end of a run."""
    total = sum(s.counts.values())
    counts = "  ".join(f"{k} {v}" for k, v in s.counts.items() if v or k == "ok")
    rates = ", ".join(
        f"stage {i}: {a:.2f}/{r:g}" if a is not None else f"stage {i}: -/{r:g}"
        for i, (a, r) in enumerate(zip(s.achieved_rate, s.requested_rate, strict=True))
    )
    per_req = f"{s.client_cpu_s / total * 1e3:.2f} ms/request" if total else "-"
    lines = [
        f"requests        {total}  ({counts})",
        f"TTFT p50/p99    {_ms(s.ttft_ms)} ms",
        f"ITL p50/p99     {_ms(s.itl_ms)} ms",
        f"sched delay     p50/p99 {_ms(s.schedule_delay_ms)} ms",
        f"achieved/req'd  {rates} (requests/s)",
        f"output tokens   sources {s.output_sources or '-'}; usage vs chunk token_ids "
        f"mismatches {s.output_mismatches}; prompt_tokens != requested: {s.prompt_mismatches}",
        f"client CPU      {s.client_cpu_s:.2f} s ({per_req})",
    ]
    p99 = s.schedule_delay_ms[1]
    if p99 is not None and p99 > SATURATION_DELAY_MS:
        lines.append(
            f"WARNING         schedule delay p99 > {SATURATION_DELAY_MS:g} ms: the load "
            "generator could not keep up "
            "(give it more CPU or workers)"
        )
    return "\n".join(lines)
