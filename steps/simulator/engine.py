"""The continuous-batching engine: one decode step per ITL for every running sequence at once.

vLLM runs one model step per inter-token latency for the whole batch: each step emits the next
token of every running sequence, admits waiting requests up to --max-num-seqs, and a request
whose prefill finished joins the batch at the next step. The simulator does the same, and that
is also what keeps it cheap: ONE event-loop timer per step for all streams (instead of one per
chunk per stream), then one pre-built `transport.write` per chunk.

Timing rules, all on `time.monotonic()`:
- Steps are absolute deadlines `anchor + k * itl`, never accumulated sleeps. A late step emits
  late and the next one keeps its own deadline (already due after a long stall: it runs at once,
  so a stream catches up and token k still leaves as near `first + k * itl` as the CPU allows).
- The engine is never early. uvloop timers have 1 ms resolution (libuv floors its clock to ms
  and uvloop rounds the delay to ms), so a timer armed for T may fire up to 0.5 ms before T;
  arming it for T + 0.5 ms makes it fire at or after T. A wakeup that still finds the deadline
  ahead re-arms instead of emitting (no busy loop: the re-armed delay is again >= 0.5 ms).
- First token: a sequence admitted at `a` finishes prefill at `p = a + ttft + prefill x prompt`
  and emits its first token at the first step that runs at or after `p`. While other sequences
  decode, that step is on their grid (TTFT then exceeds the model by up to one ITL, as in vLLM,
  where prefill rides along in a batch step). With nothing decoding the grid is re-anchored at
  `p`, so an unloaded server's TTFT is exact.
- Idle: no sequence prefilling or decoding means no timer at all (no CPU burnt while idle).

Three kinds of running sequence. Paced sequences (simulator noise: their own decode speed or a
stall, `--itl-jitter`/`--stall-rate`) get their first token at the join step like every other
and then time their later chunks themselves; the engine only holds their slot, so with noise
off no step does any extra work for them. Lock-step streams write one chunk in every step until
their last (one token per chunk, no fault): the common case, so their step is only a stamp and
a write each, through a (stamp, send, frames) triple, and each is ended at the step its last
chunk is due. A step runs cold (the caches were lost while the loop slept; measured on a small
VM, each Python operation then costs several times its hot price), so what runs per chunk is
what the simulator costs. Every other sequence (chunks of several tokens, an injected fault, a
non-streamed body) counts down steps and calls `emit`.

Inter-token latency (vllm:inter_token_latency_seconds) is observed here, per step: every
sequence that also emitted in the previous step has the same gap, the step interval, so the
step adds them with one histogram update; only the others (chunks of several tokens, or a step
skipped) are observed one by one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from time import time_ns
from typing import Protocol

from steps.simulator.latency import AdmissionQueue
from steps.simulator.metrics import Histogram

__all__ = ["TIMER_BIAS_S", "Engine", "EngineSequence", "LockstepWriter"]

#: Arm timers this much after the deadline: uvloop can fire up to 0.5 ms early (see above).
TIMER_BIAS_S = 0.0005

#: (stamp, send, frames) of a lock-step stream: per step the engine calls `stamp(time_ns())`
#: and `send(next(frames))`, nothing else (see `EngineSequence.lockstep_writer`).
LockstepWriter = tuple[Callable[[int], None], Callable[[bytes], object], Iterator[bytes]]


class EngineSequence(Protocol):
    """What the engine needs from a request: prefill time, its chunks, how to write them."""

    #: monotonic time at which prefill completes (set by `start`).
    prefill_done_at: float
    #: chunks in the whole response (a lock-step stream ends after that many steps).
    chunks: int
    #: steps until the sequence's next emission; the engine decrements it once per step.
    countdown: int
    #: times its chunks after the first itself (noise): the engine only holds its slot.
    paced: bool
    #: monotonic time of the step that streamed its last chunk, set by `emit` only: it stays
    #: 0.0 for a lock-step stream, whose chunks the engine writes itself.
    last_chunk_at: float
    done: bool

    def start(self, now: float) -> None:
        """Admitted at `now`: set `prefill_done_at` and get ready to emit."""

    def join(self, now: float) -> None:
        """Prefill done, joining the decode batch at the step running at `now`."""

    def emit(self, now: float) -> None:
        """`countdown` reached 0 in the step running at `now`: write the next chunk."""

    def lockstep_writer(self) -> LockstepWriter | None:
        """(stamp, send, frames) when it writes one chunk per step to its end, else None."""

    def complete(self) -> None:
        """A lock-step stream's last chunk was written."""


class Engine:
    """Admission queue, prefill heap, running batch and the one step timer."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        itl_s: float,
        max_num_seqs: int,
        itl_histogram: Histogram,
    ) -> None:
        self.loop = loop
        self.itl_s = itl_s
        self.itl_histogram = itl_histogram
        self.queue: AdmissionQueue[EngineSequence] = AdmissionQueue(max_num_seqs)
        self._prefilling: list[tuple[float, int, EngineSequence]] = []  # heap by prefill end
        self._tiebreak = itertools.count()
        self._running: list[EngineSequence] = []
        self._lockstep: dict[EngineSequence, LockstepWriter] = {}
        #: step number -> lock-step sequences whose last chunk that step writes.
        self._ends: dict[int, list[EngineSequence]] = {}
        self._steps_run = 0
        self._anchor = 0.0
        self._step = 0
        self._deadline = 0.0
        self._last_step_at = -1.0
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._in_step = False

    def submit(self, seq: EngineSequence) -> None:
        """A new request: start its prefill now or queue it behind --max-num-seqs."""
        if self.queue.offer(seq):
            self._start(seq)

    def release(self, seq: EngineSequence, admitted: bool) -> None:
        """`seq` finished or was aborted: free its slot (admitting the next) or unqueue it."""
        self._lockstep.pop(seq, None)
        if not admitted:
            self.queue.withdraw(seq)
            return
        nxt = self.queue.release()
        if nxt is not None:
            self._start(nxt)

    def close(self) -> None:
        """Stop stepping (shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start(self, seq: EngineSequence) -> None:
        seq.start(time.monotonic())
        heapq.heappush(self._prefilling, (seq.prefill_done_at, next(self._tiebreak), seq))
        # Nothing decoding: the grid follows the earliest prefill. Mid-step, the step's end
        # decides the next wakeup itself.
        idle_grid = not self._in_step and not self._running and not self._lockstep
        if idle_grid and (self._timer is None or seq.prefill_done_at < self._deadline):
            self._anchor_at(seq.prefill_done_at)

    def _anchor_at(self, at: float) -> None:
        self._anchor = self._deadline = at
        self._step = 0
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(self._deadline + TIMER_BIAS_S, self._run_step)

    def _run_step(self) -> None:
        """One decode step: join finished prefills, emit for every sequence due, re-arm.

        The hot path: with only lock-step streams running and nothing joining, the step calls
        no helper; the others run only in the steps that have their work to do.
        """
        self._timer = None
        now = time.monotonic()
        if now < self._deadline:
            self._arm()  # an early wakeup: never emit before the deadline
            return
        self._in_step = True
        self._steps_run = step = self._steps_run + 1
        prefilling = self._prefilling
        lockstep = self._lockstep
        steady = len(lockstep)  # wrote a chunk in the previous step too
        if prefilling and prefilling[0][0] <= now:
            self._join_prefilled(now, step)
        # Safe without a check per write: a lost connection aborts its stream (connection_lost ->
        # release) before uvloop would refuse a write, and writes after close() are dropped.
        # A copy: nothing should call back into the engine from a write, but a changed dict
        # would end the step with an exception.
        for stamp, send, frames in tuple(lockstep.values()):
            stamp(time_ns())
            send(next(frames))
        for seq in self._ends.pop(step, ()):
            if not seq.done:  # else aborted mid-stream (client gone), already released
                seq.complete()
        consecutive = (steady + self._emit_running(now)) if self._running else steady
        if consecutive:
            self.itl_histogram.observe(now - self._last_step_at, consecutive)
        self._last_step_at = now
        self._in_step = False
        if self._running or lockstep:
            self._step += 1
            self._deadline = self._anchor + self._step * self.itl_s
            self._arm()
            return
        self._go_idle()

    def _join_prefilled(self, now: float, step: int) -> None:
        """Every sequence whose prefill ended by `now` joins the batch in this step: lock-step
        streams with the step that will write their last chunk, the others to count down."""
        prefilling = self._prefilling
        while prefilling and prefilling[0][0] <= now:
            seq = heapq.heappop(prefilling)[2]
            if seq.done:
                continue
            seq.join(now)
            if seq.paced:
                continue
            writer = seq.lockstep_writer()
            if writer is None:
                self._running.append(seq)
            else:
                self._lockstep[seq] = writer
                self._ends.setdefault(step + seq.chunks - 1, []).append(seq)

    def _emit_running(self, now: float) -> int:
        """Count down the non-lock-step sequences and emit those due; drop the finished ones.

        Returns how many streamed a chunk in the previous step too (their gap is the step
        interval, observed by the caller in one histogram update); others are observed here.
        """
        previous = self._last_step_at
        consecutive = 0
        for seq in self._running:
            if seq.done:
                continue
            seq.countdown -= 1
            if seq.countdown:
                continue
            last = seq.last_chunk_at
            seq.emit(now)
            if seq.last_chunk_at != now or not last:
                continue  # nothing streamed (a body, a disconnect) or the first chunk
            if last == previous:
                consecutive += 1
            else:
                self.itl_histogram.observe(now - last)
        self._running = [seq for seq in self._running if not seq.done]
        return consecutive

    def _go_idle(self) -> None:
        """Nothing decoding: no timer until the next live prefill, whose end anchors the grid."""
        self._ends.clear()  # nothing lock-steps: what is left there was aborted mid-stream
        prefilling = self._prefilling
        while prefilling and prefilling[0][2].done:
            heapq.heappop(prefilling)
        if prefilling:
            self._anchor_at(prefilling[0][0])
