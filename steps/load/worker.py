"""One load-generator process: a uvloop event loop, one connection pool, its share of the schedule.

Plain data in (a picklable `WorkerSpec`, prompts already rendered into request bodies before
t0; each request's HTTP bytes are encoded here, before "ready"), messages out over a pipe
(ready, progress, stage_done, finished). Sends go out at absolute deadlines
`stage_start + offset` on `time.monotonic_ns()`, the clock every process on the host shares.
Records are written as Parquet part files about once a second (`steps.load.parts`): a part
that cannot be written is held and retried, never dropped, and what is still unwritten at the
end is handed to the main process over the pipe. A process killed outright (SIGKILL, OOM) loses
what it had not written: the records finished since its last flush (about a second) and, while
writes fail, every record held since the first failure; run.json counts them as missing.

Protocol (tuples over a `multiprocessing` pipe):
    main -> worker  ("stage", index, start_ns, t0_ns, wall_start_ns) | ("stop",)
    worker -> main  ("ready", warmup_errors) | ("progress", sent, done, errors, [ttft_ms...])
                    | ("stage_done", index, end_ns, StageTally) | ("unwritten", table, error)
                    | ("finished", cpu_s, records, resent)
SIGTERM stops the worker: in-flight requests are recorded as `cancelled`, parts are flushed.
SIGINT is ignored: on Ctrl-C the main process decides and sends SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from steps.load.clock import ONE_TIMER_NS, SEND_LEAD_NS, sleep_until
from steps.load.connection import ConnectError, ConnectionPool
from steps.load.http1 import encode_request
from steps.load.parts import PartWriter
from steps.load.stream_request import (
    RequestOutcome,
    RequestSpec,
    StreamSettings,
    stream_request,
)
from steps.load.writer import RecordBuffer
from steps.record_metrics import ttft_ns

__all__ = [
    "StageShare",
    "StageTally",
    "WorkerSpec",
    "process_cpu_s",
    "text_of_chunk",
    "worker_main",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageShare:
    """One stage as one worker runs it: its requests and either its send window (open loop,
    each request at its offset) or its users (closed loop: `users` requests in flight, each
    user sending the next request of the share as soon as its previous one ended)."""

    duration_s: float | None
    users: int | None
    requests: list[RequestSpec]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, as plain data (it crosses a process boundary)."""

    worker: int
    run_id: str
    base_url: str
    path: str
    headers: dict[str, str]
    chat: bool
    stages: list[StageShare]  # per stage, this worker's share
    warmup: list[bytes]
    request_timeout_s: float
    drain_timeout_s: float
    max_concurrency: int | None
    parts_dir: str
    tokenizer_source: str
    tokenizer_token_env: str | None
    tokenizer_trust_remote_code: bool
    log_level: str = "INFO"
    flush_interval_s: float = 1.0
    streaming: bool = True  # api.streaming: false = one JSON answer, e2e only


def text_of_chunk(payload: bytes) -> str:
    """Generated text of one content chunk (completion `text` or chat `delta.content`).

    The byte scan took the payload for a content chunk without parsing it, so anything that is
    not JSON of that shape raises ValueError (the request becomes a protocol_error).
    """
    obj = json.loads(payload)
    try:
        choice = (obj.get("choices") or [{}])[0]
        if "text" in choice:
            return str(choice.get("text") or "")
        delta = choice.get("delta") or choice.get("message") or {}  # streamed / whole answer
        keys = ("reasoning_content", "reasoning", "content")
        return "".join(str(delta.get(k) or "") for k in keys)
    except (AttributeError, IndexError, KeyError, TypeError):
        raise ValueError(f"no choices[0].text or .delta in {payload[:80]!r}") from None


@dataclass
class StageTally:
    """One worker's share of a finished stage, as the early stop reads it: requests ended,
    sent (written to a connection), failed, and the successful ones' TTFTs (ms)."""

    requests: int = 0
    sent: int = 0
    errors: int = 0
    ttfts_ms: list[float] = field(default_factory=list)


class _Worker:
    """One worker process: its pipe to the main process, its requests in flight, its record
    buffer and part files. `run` is its whole life: prime, warm up, run each stage the main
    process starts, then flush and report (see the module docstring's protocol)."""

    def __init__(self, spec: WorkerSpec, conn: Connection) -> None:
        self.spec = spec
        self.conn = conn
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.inflight: set[asyncio.Task[None]] = set()
        self.dispatcher: asyncio.Task[None] | None = None
        self.stopping = False
        self.sent = self.done = self.errors = 0
        self.tally = StageTally()  # the current stage's, for the main process's early stop
        self.resent = 0  # measured requests resent after a stale keep-alive close
        self.ttfts_ms: list[float] = []
        self.buffer: RecordBuffer | None = None
        self.parts = PartWriter(Path(spec.parts_dir), spec.worker)
        self.tokenizer: Any = None
        self.settings = StreamSettings(
            pool=ConnectionPool(spec.base_url),  # no proxy: it would be measured as the server
            request_timeout_ns=round(spec.request_timeout_s * 1e9),
            text_key=b'"content"' if spec.chat else b'"text"',
            count_fallback=self._count_fallback,
            streaming=spec.streaming,
        )
        self.sem = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None
        # Per stage, aligned with its share: each request's encoded (head, body).
        self.requests: list[list[tuple[bytes, bytes]]] = []

    # -- control ------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            while self.conn.poll():
                self.inbox.put_nowait(self.conn.recv())
        except (EOFError, OSError):
            # The main process is gone: stop, keep what was measured.
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            self.stop()

    def stop(self) -> None:
        """Stop dispatching; cancel in-flight requests (they record themselves as cancelled)."""
        self.stopping = True
        if self.dispatcher is not None:
            self.dispatcher.cancel()
        for task in list(self.inflight):
            task.cancel()
        self.inbox.put_nowait(("stop",))

    # -- records --------------------------------------------------------------------------
    async def _flush_loop(self, finish: asyncio.Event) -> None:
        """Flush about every flush_interval_s until `finish` is set, then once more."""
        while not finish.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finish.wait(), self.spec.flush_interval_s)
            await self.parts.flush(self.buffer)
            self._send_progress()

    def _send_progress(self) -> None:
        self.conn.send(("progress", self.sent, self.done, self.errors, self.ttfts_ms))
        self.ttfts_ms = []

    def _count_fallback(self, payloads: list[bytes]) -> int:
        """Client-side output token count; loads the tokenizer on first use (logged once)."""
        if self.tokenizer is None:
            from steps.load.prompts import load_tokenizer

            log.warning(
                "worker %d: server sent no usage or token_ids; counting output tokens with "
                "the client tokenizer (costs client CPU)",
                self.spec.worker,
            )
            env = self.spec.tokenizer_token_env
            token = os.environ.get(env) if env else None
            self.tokenizer = load_tokenizer(
                self.spec.tokenizer_source, token, self.spec.tokenizer_trust_remote_code
            )
        text = "".join(text_of_chunk(p) for p in payloads)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- requests -------------------------------------------------------------------------
    async def _one(
        self,
        request: tuple[bytes, bytes],
        rspec: RequestSpec,
        scheduled: int,
        drain_deadline: int,
        send_at: int | None,
    ) -> int:
        """Send, stream and record one request; returns when it ended (monotonic ns)."""
        assert self.buffer is not None
        self.sent += 1
        try:
            outcome = await stream_request(
                self.settings, request, rspec, scheduled, drain_deadline, send_at
            )
        finally:
            if self.sem is not None:
                self.sem.release()
        self.buffer.add(outcome)
        self.done += 1
        self.tally.requests += 1
        self.tally.sent += outcome.sent_ns is not None
        if outcome.resent:
            self.resent += 1
        if outcome.status != "ok":
            self.errors += 1
            self.tally.errors += 1
        elif outcome.chunk_ns and outcome.sent_ns is not None:
            ttft_ms = ttft_ns(outcome.sent_ns, outcome.chunk_ns[0]) / 1e6
            self.ttfts_ms.append(ttft_ms)
            self.tally.ttfts_ms.append(ttft_ms)
        return outcome.end_ns

    def _track(self, task: asyncio.Task[Any]) -> None:
        """Count `task` as in flight until it is done (`stop` cancels what is in flight)."""
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    def _encode(self, request_id: str, body: bytes) -> tuple[bytes, bytes]:
        """A request's complete bytes (head + JSON body), built before t0."""
        pool = self.settings.pool
        headers = dict(self.spec.headers)
        headers["X-Request-Id"] = request_id
        return encode_request("POST", pool.prefix + self.spec.path, pool.host_header, headers, body)

    async def _dispatch(self, stage: int, start: int, drain_deadline: int) -> None:
        loop = asyncio.get_running_loop()
        share = self.spec.stages[stage]
        if share.users is not None:
            await self._closed_loop(stage, start, share.users, drain_deadline)
            return
        assert share.duration_s is not None
        for rspec, request in zip(share.requests, self.requests[stage], strict=True):
            scheduled = start + rspec.offset_ns
            # After a long idle wait, wake early and let the request wait out the rest with
            # its connection in hand (steps.load.clock: a cold wake-up is late and slow).
            lead = time.monotonic_ns() < scheduled - ONE_TIMER_NS
            await sleep_until(scheduled - SEND_LEAD_NS if lead else scheduled)
            if self.sem is not None:
                await self.sem.acquire()  # a cap delays sends; schedule_delay shows it
            request_at = scheduled if lead else None
            self._track(
                loop.create_task(self._one(request, rspec, scheduled, drain_deadline, request_at))
            )
        await sleep_until(start + round(share.duration_s * 1e9))

    async def _closed_loop(self, stage: int, start: int, users: int, deadline: int) -> None:
        """`users` users from `start`, each sending the share's next request as soon as its
        previous one ended, until the share is sent; a request's `scheduled_ns` is when its
        user became free (so schedule delay is the client's own turnaround)."""
        loop = asyncio.get_running_loop()
        pending = iter(zip(self.spec.stages[stage].requests, self.requests[stage], strict=True))
        # A worker_max_concurrency below `users` caps what is in flight: schedule delay shows it.

        async def user() -> None:
            free_at = start
            await sleep_until(start)
            for rspec, request in pending:  # one iterator: the next request, whoever is free
                if self.sem is not None:
                    await self.sem.acquire()
                if self.stopping:
                    if self.sem is not None:
                        self.sem.release()
                    return
                task = loop.create_task(self._one(request, rspec, free_at, deadline, None))
                self._track(task)
                free_at = await task

        await asyncio.gather(*(user() for _ in range(users)))

    async def _run_stage(self, stage: int, start: int) -> int:
        await self._reprime(start)
        duration_s = self.spec.stages[stage].duration_s
        drain_deadline = (
            sys.maxsize  # closed loop: no send window to drain after
            if duration_s is None
            else start + round((duration_s + self.spec.drain_timeout_s) * 1e9)
        )
        self.dispatcher = asyncio.get_running_loop().create_task(
            self._dispatch(stage, start, drain_deadline)
        )
        try:
            await self.dispatcher
        except asyncio.CancelledError:
            if not self.stopping:
                raise
        while self.inflight:
            await asyncio.wait(list(self.inflight))
        return time.monotonic_ns()

    async def _warmup(self) -> int:
        """Warm-up requests on the measuring path itself; their outcomes are dropped."""
        no_drain = sys.maxsize  # warm-up has no send window: only request_timeout applies

        async def one(i: int, body: bytes) -> bool:
            request = self._encode(f"{self.spec.run_id}-warmup-{self.spec.worker}-{i}", body)
            spec = RequestSpec(-1, i, 0, body, 0, 0)  # lengths unknown: see stream_limits
            outcome = await stream_request(self.settings, request, spec, 0, no_drain)
            return outcome.status == "ok"

        results = await asyncio.gather(*(one(i, b) for i, b in enumerate(self.spec.warmup)))
        return sum(1 for ok in results if not ok)

    async def _prime(self) -> None:
        """Pay every first-use cost before t0, not on the first measured requests.

        Measured without this: the first Parquet part (pyarrow's lazy codec and writer setup,
        GIL held in the writer thread) delayed sends by ~500 ms. One connection is opened into
        the pool so the first request does not pay the first connect (an unreachable server
        is not an error here: the requests will record it).
        """
        buffer = RecordBuffer(self.spec.run_id, self.spec.worker, 0, 0)
        buffer.add(
            RequestOutcome(
                spec=RequestSpec(0, 0, 0, b"", 1, 1), scheduled_ns=0, sent_ns=0, end_ns=0,
                chunk_ns=[1], chunk_tokens=[1], prompt_tokens=1, prompt_tokens_source="client",
                output_tokens=1, output_tokens_source="chunks", mismatch=False, status="ok",
                http_status=200, error=None,
            )
        )  # fmt: skip
        await self.parts.prime(buffer.take_table())
        with contextlib.suppress(ConnectError):
            await self.settings.pool.open_idle()

    async def _reprime(self, start: int) -> None:
        """Before a stage starts at `start` (monotonic ns): re-open one idle connection when
        none in the pool will be fresh then.

        Idle connections expire after 4 s (steps.load.connection); the ones priming and warm-up
        left are older than that when the other workers took long to get ready, and the
        stage's first request would pay the connect as schedule delay. The connect gets until
        `start`: a slower one, or an unreachable server, is left to the requests to record.
        """
        pool = self.settings.pool
        if pool.has_fresh_idle(start):
            return
        with contextlib.suppress(ConnectError, TimeoutError):
            async with asyncio.timeout((start - time.monotonic_ns()) / 1e9):
                await pool.open_idle()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._on_readable)
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        pool = self.settings.pool
        self.requests = [
            [self._encode(f"{self.spec.run_id}-{r.stage}-{r.index}", r.body) for r in s.requests]
            for s in self.spec.stages
        ]
        try:
            await self._prime()
            warmup_errors = await self._warmup() if self.spec.warmup else 0
            # Everything allocated so far lives for the whole run: keep the GC off it.
            gc.collect()
            gc.freeze()
            gc.set_threshold(10_000, 20, 50)
            self.conn.send(("ready", warmup_errors))
            flusher: asyncio.Task[None] | None = None
            finish = asyncio.Event()
            cpu_at_t0 = 0.0
            try:
                while not self.stopping:
                    msg = await self.inbox.get()
                    if msg[0] != "stage":
                        break
                    _, stage, start, t0, wall_start = msg
                    if self.buffer is None:
                        cpu_at_t0 = process_cpu_s()
                        self.buffer = RecordBuffer(
                            self.spec.run_id,
                            self.spec.worker,
                            t0,
                            wall_start,
                            secrets=_header_secrets(self.spec.headers),
                        )
                        flusher = loop.create_task(self._flush_loop(finish))
                    self.tally = StageTally()
                    end = await self._run_stage(stage, start)
                    if not self.stopping:
                        self.conn.send(("stage_done", stage, end, self.tally))
            finally:
                finish.set()
                if flusher is not None:  # its failure (the pipe gone) must not skip the flush
                    await asyncio.gather(flusher, return_exceptions=True)
                pool.close()  # its sockets may be the file descriptors a part write lacked
                await self.parts.flush(self.buffer)
                handed = self.parts.hand_over(self.conn.send)
                self.parts.close()
                self._send_progress()
                cpu_s = process_cpu_s() - cpu_at_t0
                self.conn.send(("finished", cpu_s, self.parts.written + handed, self.resent))
        finally:
            pool.close()


def _header_secrets(headers: dict[str, str]) -> tuple[str, ...]:
    """The bearer token among the request headers (the API key), to scrub from error texts."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    token = auth.removeprefix("Bearer ").strip()
    return (token,) if token else ()


def process_cpu_s() -> float:
    """User + system CPU seconds this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Process entry point (multiprocessing target)."""
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=spec.log_level, format="%(asctime)s load %(levelname)s %(message)s", force=True
    )
    uvloop.run(_Worker(spec, conn).run())
