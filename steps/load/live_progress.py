"""What the user sees while the load runs (the end-of-run summary: `end_summary`).

On a TTY: one live line rewritten in place (sent/done/errors, rolling TTFT p50). Otherwise
(Argo pod logs): a plain log line every `log_interval_s`. Built from the workers' progress
messages (counters and the TTFTs of requests just finished), never from the records: a glance at
the run, not its statistics.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Sequence
from typing import TextIO

import numpy as np

__all__ = ["Progress"]

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
