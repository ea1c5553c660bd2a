"""One generation request as the engine runs it: pre-built chunk frames, truth, metrics.

Why pre-built: the engine's step writes one chunk for every running stream, so per-chunk Python
must be a handful of operations. When a request is admitted, all its chunk frames are built in
one pass (SSE event + chunked-transfer framing as finished bytes, from a token table whose JSON
text is encoded once per process); a step then only writes `frames[j]` and appends one
`time.time_ns()` to the truth record (the engine observes inter-token latency once per step).
No dict, no JSON encoder, no timer and no check of the connection per chunk.

Noise (`--itl-jitter`, `--stall-rate`): a request drawn with its own decode speed or a stall is
paced: after its first token (at the engine's join step, like every request) it arms one timer
per chunk at `first token + (tokens so far - 1) x itl x its speed factor (+ the stall once it
has happened)`, the model `steps.simulator.latency.NoiseModel` states. The engine's step grid
would round every gap to whole steps, which is no decode speed at all; a timer per chunk costs
more, but only for requests that asked for noise.

Truth timestamps: one `time.time_ns()` per chunk, taken just before its write. It costs ~60 ns
(vDSO), about 0.4 % of the budget for a 128-chunk request, while one stamp shared by a whole step
would be wrong by the time the step takes to write every stream (~10 us per write: ~2.5 ms for
256 streams), so ground truth stays exact per chunk.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from time import time_ns
from typing import Any, Protocol

from steps.simulator.config import SimulatorConfig
from steps.simulator.engine import TIMER_BIAS_S, Engine, LockstepWriter
from steps.simulator.http1 import JSON_TYPE, LAST_CHUNK, encode_chunk, response_head
from steps.simulator.latency import Fault, LatencyModel, NoiseModel, output_length
from steps.simulator.metrics import Metrics
from steps.simulator.tokens import OutputToken, TokenModel
from steps.simulator.truth import TruthRecord

__all__ = ["Connection", "SequenceHost", "SimSequence"]


class SequenceHost(Protocol):
    """What a sequence reads of the simulator's shared state (`server.Simulator`), typed here
    because the server creates sequences: importing it back would close an import circle."""

    config: SimulatorConfig
    tokens: TokenModel
    loop: asyncio.AbstractEventLoop
    latency: LatencyModel
    noise: NoiseModel
    metrics: Metrics
    engine: Engine
    rng: random.Random
    model_json: bytes


class Connection(Protocol):
    """What a sequence does with its client connection (`server.HttpProtocol`)."""

    keep_alive: bool
    transport: asyncio.Transport | None

    def write(self, data: bytes) -> None:
        """Write if still connected."""

    def respond(self, status: int, content_type: str, body: bytes) -> None:
        """A complete response with Content-Length."""

    def response_done(self) -> None:
        """The current response is complete."""

    def close(self) -> None:
        """Close after flushing what was written."""


_SSE = "text/event-stream; charset=utf-8"
_DONE = b"data: [DONE]\n\n"
#: Truncated JSON in an otherwise valid SSE event: what --malformed-rate injects.
_MALFORMED = b'data: {"id": "malformed", "choices": [{"text": \n\n'
_EVENT_END = b"}]}\n\n"
#: Response ids are unique like vLLM's uuid4 hex (32 digits): a random per-process half and a
#: counter, which costs nothing per request (uuid4 reads the OS entropy pool every time).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def _drop(data: bytes) -> None:
    """Where a stream whose connection is already gone writes."""


class SimSequence:
    """A request's life: queued, prefilling, decoding in the engine's batch, finished.

    A "sequence" as vLLM says it (`--max-num-seqs`); the prefix keeps it apart from
    `collections.abc.Sequence`, which it is not."""

    def __init__(
        self,
        sim: SequenceHost,
        conn: Connection,
        record: TruthRecord,
        request: dict[str, Any],
        fault: Fault | None,
        chat: bool,
    ) -> None:
        self.sim = sim
        self.conn = conn
        self.record = record
        self.chat = chat
        self.fault = fault
        self.prompt_tokens: int = request["_prompt_tokens"]
        rng = sim.rng
        n = output_length(request["_max_tokens"], bool(request.get("ignore_eos")), rng.random())
        self.finish_reason = "length" if n == request["_max_tokens"] else "stop"
        table = sim.tokens.table
        start = rng.randrange(len(table))
        # Consecutive table entries from a random start, wrapping around (one C slice mostly).
        self.tokens: list[OutputToken] = (
            list(table[start : start + n])
            if start + n <= len(table)
            else [table[(start + i) % len(table)] for i in range(n)]
        )
        self.sizes = sim.latency.chunk_sizes(n)
        self.chunks = len(self.sizes)
        # Faults strike at a chunk strictly inside the stream, so some content arrives first.
        fault_chunk = 1 + rng.randrange(len(self.sizes) - 1) if len(self.sizes) > 1 else 0
        self.stream = bool(request.get("stream"))
        #: chunk index at which a stream's fault strikes; -1 = never (checked once per chunk).
        self.fault_chunk = fault_chunk if fault is not None and self.stream else -1
        self._draw_noise(sim.noise, rng)
        options = request.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.return_token_ids = bool(request.get("return_token_ids"))
        self.arrived_at = time.monotonic()
        self.head_at = self.arrived_at + sim.config.slow_first_byte_ms / 1e3
        self.prefill_done_at = 0.0
        self.first_token_at = 0.0
        self.last_chunk_at = 0.0
        self.countdown = 0
        self.next_chunk = 0
        self.frames: list[bytes] = []
        self.stamps = record.chunk_wall_ns
        self.send: Callable[[bytes], object] = _drop
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_sent = False
        self.done = False
        self.admitted = False
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{_ID_PREFIX}{next(_ID_COUNTER):016x}"
        self._header = b'"created":%d,"model":%b' % (int(time.time()), sim.model_json)
        # Event fragments, set by _build_frames (streams only).
        self._event_head = self._prefix = self._running = self._ending = b""

    def _draw_noise(self, model: NoiseModel, rng: random.Random) -> None:
        """This request's noise (nothing drawn for a spread that is off: same RNG stream)."""
        noise = model.request(rng)
        #: --ttft-jitter: this request's factor on prefill (1.0 when off).
        self.ttft_factor = noise.ttft_factor
        #: --itl-jitter / --stall-*: its decode speed factor and its one stall (s).
        self.itl_factor, self.stall_s = noise.itl_factor, noise.stall_s
        self.paced = bool(self.chunks) and (self.itl_factor != 1.0 or self.stall_s > 0)
        #: the stall lands before this chunk (a gap inside the stream); chunks = never.
        self.stall_chunk = (
            1 + rng.randrange(self.chunks - 1) if self.stall_s and self.chunks > 1 else self.chunks
        )
        self.pace_timer: asyncio.TimerHandle | None = None
        self.due_s: list[float] = []  # paced: each emission's time after the first token

    # -- lifecycle -----------------------------------------------------------------------------

    def arrive(self) -> None:
        """Send a stream's head right away (as vLLM does) and hand the request to the engine."""
        if self.stream:
            if self.head_at > self.arrived_at:
                self.head_timer = self.sim.loop.call_at(self.head_at, self._send_head)
            else:
                self._send_head()
        self.sim.engine.submit(self)

    def _send_head(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if not self.head_sent:
            self.head_sent = True
            self.conn.write(response_head(200, _SSE, None, self.conn.keep_alive))

    def start(self, now: float) -> None:
        """Admitted: prefill runs until `prefill_done_at`; build the stream's frames now."""
        self.admitted = True
        sim = self.sim
        sim.metrics.prompt_tokens += self.prompt_tokens
        sim.metrics.kv_cache.admit(self, len(self.tokens))
        # --slow-first-byte-ms: nothing, not even the first token, leaves before head_at.
        self.prefill_done_at = max(
            now + sim.latency.first_token_delay_s(self.prompt_tokens) * self.ttft_factor,
            self.head_at,
        )
        if self.stream:
            self.frames = self._build_frames()

    def join(self, now: float) -> None:
        """First token in this step: a stream emits per chunk from now on, a body at the end."""
        self.first_token_at = now
        if not self.stream:
            self.countdown = len(self.tokens)
        else:
            self._send_head()  # a no-op unless its timer has not fired yet
            self.sim.metrics.ttft.observe(now - self.arrived_at)
            self.countdown = 1
            # Bound once: the engine stops emitting when the connection is lost (abort), and
            # uvloop drops writes made after close() until then, so no per-chunk check is needed.
            transport = self.conn.transport
            self.send = transport.write if transport is not None else _drop
        if self.paced:
            self.due_s = self._due_times()
            self._pace()

    def _due_times(self) -> list[float]:
        """When each emission is due, in s after the first token (paced requests)."""
        itl_s = self.sim.latency.itl_s * self.itl_factor
        if not self.stream:  # the whole body with the last token
            stalled = self.stall_s if self.stall_chunk < self.chunks else 0.0
            return [(len(self.tokens) - 1) * itl_s + stalled]
        due, tokens = [], 0
        for j, size in enumerate(self.sizes):
            tokens += size
            due.append((tokens - 1) * itl_s + (self.stall_s if j >= self.stall_chunk else 0.0))
        return due

    def _pace(self) -> None:
        """A paced request's timer: emit the chunk that is due, then arm for the next one."""
        self.pace_timer = None
        if self.done:
            return
        now = time.monotonic()
        due = self.first_token_at + self.due_s[self.next_chunk]
        if now >= due:
            last = self.last_chunk_at
            self.emit(now)
            if last and self.last_chunk_at == now:
                self.sim.engine.itl_histogram.observe(now - last)
            if self.done:
                return
            due = self.first_token_at + self.due_s[self.next_chunk]
        # Never early: uvloop may fire up to 0.5 ms before the time asked (engine.TIMER_BIAS_S).
        self.pace_timer = self.sim.loop.call_at(due + TIMER_BIAS_S, self._pace)

    def emit(self, now: float) -> None:
        """Stream: write the next pre-built chunk. Non-stream: the whole body (last token).

        The per-chunk path of streams the engine does not lock-step (see `lockstep_writer`).
        """
        if not self.stream:
            self._send_whole()
            return
        j = self.next_chunk
        if j == self.fault_chunk and self._strike_fault():
            return
        self.stamps.append(time_ns())
        self.send(self.frames[j])
        self.last_chunk_at = now
        j += 1
        self.next_chunk = j
        if j < self.chunks:
            self.countdown = self.sizes[j]
            return
        self.complete()

    def lockstep_writer(self) -> LockstepWriter | None:
        """The engine's fast path, for a stream that writes one chunk in every step to its end.

        That is every stream of one token per chunk with no fault to strike: the engine then
        only stamps and writes (`stamp(time_ns())`, `send(next(frames))`) and ends it after
        `chunks` steps, so the per-chunk Python is two C calls. Others get None and `emit`.
        """
        if not self.stream or self.fault_chunk >= 0 or self.chunks != len(self.tokens):
            return None
        return self.stamps.append, self.send, iter(self.frames)

    def complete(self) -> None:
        """The last chunk was written: the response is done."""
        self.record.http_status = 200
        self._finish(None)
        self.conn.response_done()

    def _strike_fault(self) -> bool:
        """At the fault chunk: True when the stream ended here (disconnect)."""
        if self.fault is Fault.DISCONNECT:
            self._finish(Fault.DISCONNECT.value)
            self.conn.close()
            return True
        self.record.fault = Fault.MALFORMED.value  # its frame carries the bad event
        return False

    def _finish(self, fault: str | None) -> None:
        """Release the slot (admitting the next waiting request) and account the request."""
        if self.done:
            return
        self.done = True
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if self.pace_timer is not None:
            self.pace_timer.cancel()
            self.pace_timer = None
        sim = self.sim
        record = self.record
        if self.stream:
            record.chunk_tokens = self.sizes[: len(self.stamps)]  # one stamp per chunk written
        record.completion_tokens = sum(record.chunk_tokens)
        self.frames = []
        if fault is not None and record.fault is None:
            record.fault = fault
        if self.admitted:
            sim.metrics.generation_tokens += record.completion_tokens
            sim.metrics.kv_cache.release(self)
        sim.engine.release(self, self.admitted)
        if fault is None:
            sim.metrics.success[self.finish_reason] += 1
            sim.metrics.e2e.observe(time.monotonic() - self.arrived_at)

    def abort(self) -> None:
        """The client closed the connection while this request was in flight."""
        self._finish("client_closed")

    # -- payloads ------------------------------------------------------------------------------

    def _build_frames(self) -> list[bytes]:
        """Every chunk of the stream as the exact bytes one `transport.write` sends.

        Plain chunks (one token, no token ids, neither first, faulty nor last) are one `%`
        format each in a comprehension; the few special ones go through `_frame`.
        """
        chat = self.chat
        obj = b"chat.completion.chunk" if chat else b"text_completion"
        self._event_head = b'data: {"id":"%b","object":"%b",%b,"choices":[{"index":0,' % (
            self.id.encode(),
            obj,
            self._header,
        )
        prefix = self._event_head + (b'"delta":{"content":' if chat else b'"text":')
        finish = b'%b,"logprobs":null,"finish_reason":' % (b"}" if chat else b"")
        stop = b"" if chat else b',"stop_reason":null'
        self._prefix = prefix
        self._running = finish + b"null" + stop
        self._ending = finish + b'"%b"' % self.finish_reason.encode() + stop
        sizes = self.sizes
        if self.return_token_ids or len(sizes) != len(self.tokens):
            return [self._frame(j) for j in range(len(sizes))]
        plain_end = self._running + _EVENT_END
        fixed = len(prefix) + len(plain_end)
        frames = [
            b"%x\r\n%b%b%b\r\n" % (fixed + len(t.json_text), prefix, t.json_text, plain_end)
            for t in self.tokens
        ]
        for j in {0, self.fault_chunk, len(sizes) - 1} - {-1}:
            frames[j] = self._frame(j)
        return frames

    def _frame(self, j: int) -> bytes:
        """Chunk `j` in full generality (several tokens, token ids, role, fault, tail)."""
        first = sum(self.sizes[:j])
        tokens = self.tokens[first : first + self.sizes[j]]
        text = (
            tokens[0].json_text
            if len(tokens) == 1
            else b'"%b"' % b"".join(t.json_text[1:-1] for t in tokens)
        )
        last = j == len(self.sizes) - 1
        parts = [self._prefix, text, self._ending if last else self._running]
        if self.return_token_ids:
            parts.append(b',"token_ids":[%b]' % b",".join(t.id_bytes for t in tokens))
        parts.append(_EVENT_END)
        if j == 0 and self.chat:
            parts.insert(0, self._role_event())
        if j == self.fault_chunk and self.fault is Fault.MALFORMED:
            parts.insert(0, _MALFORMED)
        if not last:
            return encode_chunk(b"".join(parts))
        parts.append(self._tail())
        return encode_chunk(b"".join(parts)) + LAST_CHUNK

    def _role_event(self) -> bytes:
        return self._event_head + (
            b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null'
            + _EVENT_END
        )

    def _usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + len(self.tokens),
            "completion_tokens": len(self.tokens),
        }
        if self.sim.config.enable_prompt_tokens_details:  # no prefix cache: nothing cached
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
        return usage

    def _tail(self) -> bytes:
        """After the last content event: the usage event (if asked) and [DONE]."""
        tail = b""
        if self.include_usage:
            obj = b"chat.completion.chunk" if self.chat else b"text_completion"
            tail = b'data: {"id":"%b","object":"%b",%b,"choices":[],"usage":%b}\n\n' % (
                self.id.encode(),
                obj,
                self._header,
                json.dumps(self._usage()).encode(),
            )
        return tail + _DONE

    def _send_whole(self) -> None:
        """Non-streamed: the whole response at the last token's step."""
        conn = self.conn
        if self.fault is Fault.DISCONNECT:
            self._finish(Fault.DISCONNECT.value)
            conn.close()
            return
        text = "".join(t.text for t in self.tokens)
        choice: dict[str, Any] = {"index": 0}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        choice["logprobs"] = None
        choice["finish_reason"] = self.finish_reason
        if not self.chat:
            choice["stop_reason"] = None
        if self.return_token_ids:
            choice["token_ids"] = [t.token_id for t in self.tokens]
        response = {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": int(time.time()),
            "model": self.sim.config.model,
            "choices": [choice],
            "usage": self._usage(),
        }
        body = json.dumps(response).encode()
        if self.fault is Fault.MALFORMED:
            body = body[: len(body) // 2]
            self.record.fault = Fault.MALFORMED.value
        self.sim.metrics.ttft.observe(self.first_token_at - self.arrived_at)
        self.record.chunk_wall_ns.append(time.time_ns())
        self.record.chunk_tokens = [len(self.tokens)]
        self.record.http_status = 200
        self._finish(None)
        conn.respond(200, JSON_TYPE, body)
