"""Waiting for an absolute send deadline on `time.monotonic_ns()`: never early, rarely late.

Two measured facts of the machines this runs on shape it (2-core dev VM; a cloud node's idle
cores behave alike, less so):

- uvloop timers have millisecond resolution and may fire up to ~1 ms early, so the last
  fraction of a millisecond is a short blocking sleep (`_NAP_NS`).
- an idle CPU wakes late by about 1-2 % of the sleep (a 1 s asyncio sleep 8-20 ms late, a
  50 ms one under 2 ms), and the first few milliseconds after such a wake-up run 2-3x slower
  (caches gone cold). At low rates, or with short answers, a worker idles for seconds between
  sends: one long sleep then the send path run cold put 5-25 ms of schedule delay on nearly
  every send (1 QPS, 16-token answers).

So a long wait is approached in steps of 7/8 of what is left (a 1 s gap: about four wake-ups),
and the worker wakes `SEND_LEAD_NS` early for a long gap: the request takes its connection and
builds its state before the deadline, then waits the last few milliseconds on one short timer
and writes (`sent_ns` is still taken just before the write). Gaps up to `ONE_TIMER_NS` (every
rate above ~20 QPS per worker) are one timer and no lead, as before: no extra wake-ups where
client CPU per request matters.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["ONE_TIMER_NS", "SEND_LEAD_NS", "sleep_until"]

#: Finish waits shorter than this with a blocking sleep (uvloop timers are ms).
_NAP_NS = 300_000
#: Waits up to this long are one timer (late by under ~2 ms when the CPU was idle).
ONE_TIMER_NS = 50_000_000
#: How early a worker wakes for a send after a longer wait (the cold send path takes 2-5 ms).
SEND_LEAD_NS = 10_000_000


async def sleep_until(deadline_ns: int) -> None:
    """Return at `deadline_ns` (monotonic), never early."""
    while True:
        remaining = deadline_ns - time.monotonic_ns()
        if remaining <= _NAP_NS:
            break
        step = remaining - _NAP_NS // 2 if remaining <= ONE_TIMER_NS else remaining * 7 // 8
        await asyncio.sleep(step / 1e9)
    if remaining > 0:
        time.sleep(remaining / 1e9)
