"""The main process's side of the worker processes: spawn them, read their pipes, pass on
signals, notice the ones that die, stop them all.

Everything a worker says arrives as a message (steps/load/worker.py lists them) and is kept
here for the run to read: who is ready, who finished a stage and when, who finished the run
with how much CPU and how many resent requests, and the records a worker could not write
itself. A worker that exits without its `finished` message is a lost worker; the run says so in
run.json.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

import pyarrow as pa

from steps.load.live_progress import Progress
from steps.load.worker import StageTally, WorkerSpec, worker_main

__all__ = ["STOP_GRACE_S", "Supervisor", "supervised"]

log = logging.getLogger(__name__)

#: How long stopped workers get to flush their records before they are killed.
STOP_GRACE_S = 30.0


class Supervisor:
    """The main process's state while workers run."""

    def __init__(self, procs: list[Any], conns: list[Connection], progress: Progress) -> None:
        self.procs = procs
        self.conns = conns
        self.progress = progress
        self.alive = set(range(len(procs)))
        self.ready: set[int] = set()
        self.finished: dict[int, tuple[float, int]] = {}  # worker -> (CPU s since t0, records)
        self.resent: dict[int, int] = {}  # worker -> requests resent after a stale close
        self.stage_done: dict[int, int] = {}  # worker -> end of its current stage (monotonic ns)
        self.stage_tallies: dict[int, StageTally] = {}  # worker -> its share of that stage
        self.warmup_errors = 0
        self.unwritten: list[tuple[int, pa.Table, str | None]] = []
        self.signal_name: str | None = None
        self.stop_sent = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGINT handler: remembered here, acted on by the next `pump`."""
        self.signal_name = signal.Signals(signum).name

    def pump(self, timeout_s: float) -> None:
        """Handle whatever arrived within `timeout_s`; forward a pending stop."""
        if self.signal_name and not self.stop_sent:
            self.stop_sent = True
            log.warning(
                "%s: stopping workers; in-flight requests become cancelled", self.signal_name
            )
            for w in self.alive:
                self._kill(w, signal.SIGTERM)
        by_conn = {id(self.conns[w]): w for w in self.alive}
        by_sentinel = {self.procs[w].sentinel: w for w in self.alive}
        objs: list[Any] = [self.conns[w] for w in self.alive] + list(by_sentinel)
        for obj in wait(objs, timeout=timeout_s) if objs else []:
            if isinstance(obj, int):
                self.worker_exited(by_sentinel[obj])
                continue
            w = by_conn[id(obj)]
            if w in self.alive and not self._drain(w):
                self.worker_exited(w)
        self.progress.show(time.monotonic())

    def _drain(self, w: int) -> bool:
        """Handle every message waiting from worker `w`; False once its pipe is closed."""
        conn = self.conns[w]
        try:
            while conn.poll():
                self._handle(w, conn.recv())
        except (EOFError, OSError):
            return False
        return True

    def _handle(self, w: int, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "progress":
            self.progress.update(w, msg[1], msg[2], msg[3], msg[4])
        elif kind == "ready":
            self.ready.add(w)
            self.warmup_errors += msg[1]
        elif kind == "stage_done":
            self.stage_done[w] = msg[2]
            self.stage_tallies[w] = msg[3]
        elif kind == "unwritten":
            self.unwritten.append((w, msg[1], msg[2]))
        elif kind == "finished":
            _, cpu_s, records, resent = msg
            self.finished[w] = (cpu_s, records)
            self.resent[w] = resent
            log.info(
                "worker %d finished: %d records (%d resent after a stale keep-alive close), "
                "%.2f s CPU since t0",
                w, records, resent, cpu_s,
            )  # fmt: skip

    def worker_exited(self, w: int) -> None:
        """Worker `w` exited: read what it sent last (the pipe outlives the process), join it.

        Its exit and its final messages can be seen in the same `wait`, in either order; without
        the read a worker that did finish would be taken for one that died mid-run.
        """
        if w not in self.alive:
            return
        self.alive.discard(w)
        self._drain(w)
        proc = self.procs[w]
        proc.join(timeout=5)
        if w not in self.finished:
            log.error("worker %d exited (code %s) without finishing", w, proc.exitcode)

    def _kill(self, w: int, sig: int) -> None:
        pid = self.procs[w].pid
        if pid is not None and self.procs[w].is_alive():
            os.kill(pid, sig)

    def wait_for(self, done: Callable[[], bool], timeout_s: float | None = None) -> bool:
        """Pump until `done()` or a signal or (optionally) a timeout; True when done."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not done():
            if self.signal_name or (deadline is not None and time.monotonic() > deadline):
                return False
            self.pump(0.25)
        return True

    def broadcast(self, msg: tuple[Any, ...]) -> None:
        """Send `msg` to every live worker; one whose pipe is gone has exited."""
        for w in list(self.alive):
            try:
                self.conns[w].send(msg)
            except OSError:
                self.worker_exited(w)

    def shutdown(self) -> None:
        """Stop every worker and collect their final messages (kill after a grace period)."""
        if not self.signal_name:
            self.broadcast(("stop",))
        deadline = time.monotonic() + STOP_GRACE_S
        while self.alive and time.monotonic() < deadline:
            self.pump(0.25)
        for w in list(self.alive):
            log.error("worker %d did not stop in %.0f s; killing it", w, STOP_GRACE_S)
            self._kill(w, signal.SIGKILL)
            self.worker_exited(w)

    def lost_workers(self) -> list[int]:
        """Workers that exited without their `finished` message."""
        return [w for w in range(len(self.procs)) if w not in self.finished]

    def exit_code(self, w: int) -> int | None:
        """Worker `w`'s exit code (None while it runs)."""
        code: int | None = self.procs[w].exitcode
        return code

    def resent_requests(self) -> int:
        """Requests the finished workers resent once after a stale keep-alive close."""
        return sum(self.resent.values())

    def workers_cpu_s(self) -> float:
        """CPU seconds the finished workers spent since t0."""
        return sum(cpu for cpu, _ in self.finished.values())


@contextmanager
def supervised(specs: list[WorkerSpec], progress: Progress) -> Iterator[Supervisor]:
    """Spawn one process per spec and route SIGTERM/SIGINT to the supervisor while inside.

    On the way out (normally or not) the previous handlers come back and no worker outlives
    the block: one still running is killed and joined.
    """
    ctx = mp.get_context("spawn")  # no inherited threads/locks (tokenizers, pytest)
    procs, conns = [], []
    for spec in specs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker_main, args=(spec, child), name=f"load-worker-{spec.worker}", daemon=True
        )
        proc.start()
        child.close()
        procs.append(proc)
        conns.append(parent)
    supervisor = Supervisor(procs, conns, progress)
    signals = (signal.SIGTERM, signal.SIGINT)
    old_handlers = {s: signal.signal(s, supervisor.on_signal) for s in signals}
    try:
        yield supervisor
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=5)
