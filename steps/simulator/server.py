"""The simulator's asyncio server: one Protocol per connection, one Generation per request.

Why callbacks instead of coroutines: a streamed request is a chain of `loop.call_at` timers at
absolute deadlines (first token + k x itl), each writing one pre-assembled chunk. No task, no
sleep future and no JSON encoder run per chunk, which keeps the CPU cost per 128-chunk request
far below the 2 ms budget and the chunk timing independent of earlier lateness.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from steps.simulator.config import SimulatorConfig
from steps.simulator.http11 import (
    LAST_CHUNK,
    MAX_HEAD_BYTES,
    HttpError,
    RequestHead,
    encode_chunk,
    parse_head,
    response_head,
)
from steps.simulator.latency import AdmissionQueue, Fault, LatencyModel, output_length, pick_fault
from steps.simulator.metrics import Metrics
from steps.simulator.tokens import OutputToken, TokenModel
from steps.simulator.truth import TruthRecord, TruthStore

__all__ = ["HttpProtocol", "Simulator"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
_DEFAULT_MAX_TOKENS = 16  # vLLM's default for /v1/completions
_DONE = b"data: [DONE]\n\n"
#: Truncated JSON in an otherwise valid SSE event: what --malformed-rate injects.
_MALFORMED = b'data: {"id": "malformed", "choices": [{"text": \n\n'
_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


class RequestError(Exception):
    """A generation request answered with a vLLM-style error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_body(status: int, message: str) -> bytes:
    """vLLM's OpenAI-style error JSON."""
    error = {
        "message": message,
        "type": _ERROR_TYPES.get(status, "Error"),
        "param": None,
        "code": status,
    }
    return json.dumps({"error": error}).encode()


class Simulator:
    """State shared by all connections: settings, queue, truth, metrics, seeded RNG."""

    def __init__(
        self,
        config: SimulatorConfig,
        tokens: TokenModel,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.loop = loop
        self.latency = LatencyModel(
            ttft_s=config.ttft_ms / 1e3,
            itl_s=config.itl_ms / 1e3,
            prefill_s_per_token=config.prefill_us_per_token / 1e6,
            tokens_per_chunk=config.tokens_per_chunk,
        )
        self.queue: AdmissionQueue[Generation] = AdmissionQueue(config.max_num_seqs)
        self.truth = TruthStore()
        self.metrics = Metrics(config.model)
        self.rng = random.Random(config.seed)
        self.ready_at = loop.time() + config.startup_delay_s
        self.connections: set[HttpProtocol] = set()
        self.model_json = json.dumps(config.model).encode()
        self._created = int(time.time())

    # -- routes ------------------------------------------------------------------------------

    def handle(self, conn: HttpProtocol, head: RequestHead, body: bytes, arrival_ns: int) -> None:
        """Answer one request; generation requests finish later through their Generation."""
        path, method = head.path, head.method
        if path in ("/v1/completions", "/v1/chat/completions"):
            if method != "POST":
                conn.respond(405, _JSON, b'{"detail":"Method Not Allowed"}')
                return
            self._generate(conn, head, body, arrival_ns, chat=path.endswith("chat/completions"))
            return
        routes: dict[tuple[str, str], Callable[[HttpProtocol], None]] = {
            ("GET", "/health"): self._health,
            ("GET", "/v1/models"): self._models,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/debug/truth"): self._truth,
            ("POST", "/debug/truth/reset"): self._truth_reset,
        }
        route = routes.get((method, path))
        if route is not None:
            route(conn)
        elif any(p == path for _, p in routes):
            conn.respond(405, _JSON, b'{"detail":"Method Not Allowed"}')
        else:
            conn.respond(404, _JSON, b'{"detail":"Not Found"}')

    def starting(self) -> bool:
        """True during --startup-delay-s (a model server still loading weights)."""
        return self.loop.time() < self.ready_at

    def _health(self, conn: HttpProtocol) -> None:
        if self.starting():
            conn.respond(503, _JSON, error_body(503, "model is still loading"))
        else:
            conn.respond(200, _JSON, b"")

    def _models(self, conn: HttpProtocol) -> None:
        if self.starting():
            conn.respond(503, _JSON, error_body(503, "model is still loading"))
            return
        card = {
            "id": self.config.model,
            "object": "model",
            "created": self._created,
            "owned_by": "vllm",
            "root": self.config.model,
            "parent": None,
            "max_model_len": self.config.max_model_len,
            "permission": [],
        }
        conn.respond(200, _JSON, json.dumps({"object": "list", "data": [card]}).encode())

    def _metrics(self, conn: HttpProtocol) -> None:
        conn.respond(200, _PROMETHEUS, self.metrics.render(self.queue.running, self.queue.waiting))

    def _truth(self, conn: HttpProtocol) -> None:
        conn.respond(200, _JSON, self.truth.to_json())

    def _truth_reset(self, conn: HttpProtocol) -> None:
        cleared = self.truth.reset()
        log.info("truth reset: %d records cleared", cleared)
        conn.respond(200, _JSON, json.dumps({"cleared": cleared}).encode())

    # -- generation ----------------------------------------------------------------------------

    def _generate(
        self, conn: HttpProtocol, head: RequestHead, body: bytes, arrival_ns: int, chat: bool
    ) -> None:
        record = self.truth.add(head.headers.get("x-request-id"), arrival_ns)
        try:
            request = self._parse_request(body, chat, record)
        except RequestError as exc:
            record.http_status = exc.status
            conn.respond(exc.status, _JSON, error_body(exc.status, str(exc)))
            return
        fault = pick_fault(
            self.rng.random(),
            self.config.error_rate,
            self.config.disconnect_rate,
            self.config.malformed_rate,
        )
        if fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if fault is Fault.ERROR_500 else 503
            record.http_status = status
            record.fault = fault.value
            conn.respond(status, _JSON, error_body(status, f"injected fault: {fault.value}"))
            return
        gen = Generation(self, conn, record, request, fault, chat)
        conn.generation = gen
        gen.arrive()

    def _parse_request(self, body: bytes, chat: bool, record: TruthRecord) -> dict[str, Any]:
        """Validate like vLLM; returns the request with `_prompt_tokens` and `_max_tokens` set."""
        if self.starting():
            raise RequestError(503, "model is still loading")
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"request body is not valid JSON: {exc}") from exc
        if not isinstance(request, dict):
            raise RequestError(400, "request body must be a JSON object")
        model = request.get("model", self.config.model)
        if model != self.config.model:
            raise RequestError(404, f"The model `{model}` does not exist.")
        prompt_tokens = self._count_chat(request) if chat else self._count_prompt(request)
        record.prompt_tokens = prompt_tokens
        max_tokens = request.get("max_tokens", request.get("max_completion_tokens"))
        if max_tokens is None:
            max_tokens = _DEFAULT_MAX_TOKENS
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise RequestError(400, f"max_tokens must be a positive integer, got {max_tokens!r}")
        if prompt_tokens + max_tokens > self.config.max_model_len:
            raise RequestError(
                400,
                f"This model's maximum context length is {self.config.max_model_len} tokens. "
                f"However, you requested {prompt_tokens + max_tokens} tokens "
                f"({prompt_tokens} in the messages, {max_tokens} in the completion).",
            )
        request["_prompt_tokens"] = prompt_tokens
        request["_max_tokens"] = max_tokens
        return request

    def _count_prompt(self, request: dict[str, Any]) -> int:
        prompt = request.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
            prompt = prompt[0]  # a batch of one
        if isinstance(prompt, str) and prompt:
            return self.tokens.count_text(prompt, True)
        if (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
        ):
            return len(prompt)
        raise RequestError(
            400, "prompt must be a non-empty string or list of token ids (batches not supported)"
        )

    def _count_chat(self, request: dict[str, Any]) -> int:
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages must be a non-empty list")
        return self.tokens.count_chat(messages)

    def close_all(self) -> None:
        """Drop every connection (shutdown): streams in flight end abruptly, as in vLLM."""
        for conn in list(self.connections):
            conn.close()


class Generation:
    """One request's life: wait for a slot, prefill, stream chunks at absolute deadlines."""

    def __init__(
        self,
        sim: Simulator,
        conn: HttpProtocol,
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
        self.tokens: list[OutputToken] = [table[(start + i) % len(table)] for i in range(n)]
        self.sizes = sim.latency.chunk_sizes(n)
        self.offsets = sim.latency.chunk_offsets_s(self.sizes)
        # Faults strike at a chunk strictly inside the stream, so some content arrives first.
        self.fault_chunk = 1 + rng.randrange(len(self.sizes) - 1) if len(self.sizes) > 1 else 0
        self.stream = bool(request.get("stream"))
        options = request.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.return_token_ids = bool(request.get("return_token_ids"))
        self.arrived_at = sim.loop.time()
        self.head_at = self.arrived_at + sim.config.slow_first_byte_ms / 1e3
        self.first_token_at = 0.0
        self.last_chunk_at = 0.0
        self.next_chunk = 0
        self.sent_tokens = 0
        self.timer: asyncio.TimerHandle | None = None
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_sent = False
        self.done = False
        self.admitted = False
        self.id = f"chatcmpl-{uuid.uuid4().hex}" if chat else f"cmpl-{uuid.uuid4().hex}"
        self._header = b'"created":%d,"model":%b' % (int(time.time()), sim.model_json)
        self._prefix, self._suffix = self._frame_parts()

    # -- lifecycle -----------------------------------------------------------------------------

    def arrive(self) -> None:
        """Take a running slot or queue; the stream's head goes out right away (as vLLM's)."""
        if self.stream:
            if self.head_at > self.arrived_at:
                self.head_timer = self.sim.loop.call_at(self.head_at, self._send_head)
            else:
                self._send_head()
        if self.sim.queue.offer(self):
            self.admit()

    def _send_head(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if not self.head_sent:
            self.head_sent = True
            self.conn.write(response_head(200, _SSE, None, self.conn.keep_alive))

    def admit(self) -> None:
        """Start prefill now; the first token is due after the latency model's TTFT."""
        self.admitted = True
        sim = self.sim
        sim.metrics.prompt_tokens += self.prompt_tokens
        # --slow-first-byte-ms: nothing, not even the first token, leaves before head_at.
        self.first_token_at = max(
            sim.loop.time() + sim.latency.first_token_delay_s(self.prompt_tokens), self.head_at
        )
        if self.stream:
            self.timer = sim.loop.call_at(self.first_token_at, self._send_chunk)
        else:
            last_at = self.first_token_at + (self.offsets[-1] if self.offsets else 0.0)
            self.timer = sim.loop.call_at(last_at, self._send_whole)

    def _finish(self, fault: str | None) -> None:
        """Release the slot (admitting the next waiting request) and account the request."""
        if self.done:
            return
        self.done = True
        for timer in (self.timer, self.head_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.head_timer = None
        sim = self.sim
        record = self.record
        record.completion_tokens = self.sent_tokens
        if fault is not None and record.fault is None:
            record.fault = fault
        if self.admitted:
            sim.metrics.generation_tokens += self.sent_tokens
            nxt = sim.queue.release()
            if nxt is not None:
                nxt.admit()
        else:
            sim.queue.withdraw(self)
        if fault is None:
            now = sim.loop.time()
            sim.metrics.success[self.finish_reason] += 1
            sim.metrics.e2e.observe(now - self.arrived_at)

    def abort(self) -> None:
        """The client closed the connection while this request was in flight."""
        self._finish("client_closed")

    # -- payloads ------------------------------------------------------------------------------

    def _frame_parts(self) -> tuple[bytes, bytes]:
        """Constant bytes around each chunk's text, assembled once per request."""
        header = self._header
        if self.chat:
            prefix = (
                b'data: {"id":"%b","object":"chat.completion.chunk",%b,'
                b'"choices":[{"index":0,"delta":{"content":'
                % (
                    self.id.encode(),
                    header,
                )
            )
            suffix = b'},"logprobs":null,"finish_reason":'
        else:
            prefix = (
                b'data: {"id":"%b","object":"text_completion",%b,"choices":[{"index":0,"text":'
                % (
                    self.id.encode(),
                    header,
                )
            )
            suffix = b',"logprobs":null,"finish_reason":'
        return prefix, suffix

    def _event(self, tokens: list[OutputToken], finish: bool) -> bytes:
        text = b'"%b"' % b"".join(t.json_text[1:-1] for t in tokens)
        parts = [self._prefix, text, self._suffix]
        parts.append(b'"%b"' % self.finish_reason.encode() if finish else b"null")
        if not self.chat:
            parts.append(b',"stop_reason":null')
        if self.return_token_ids:
            parts.append(b',"token_ids":[%b]' % b",".join(t.id_bytes for t in tokens))
        parts.append(b"}]}\n\n")
        return b"".join(parts)

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + len(self.tokens),
            "completion_tokens": len(self.tokens),
        }

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

    # -- timers --------------------------------------------------------------------------------

    def _send_chunk(self) -> None:
        """Write chunk k, then arm the timer for chunk k+1 at its absolute deadline."""
        self.timer = None
        k = self.next_chunk
        conn = self.conn
        sim = self.sim
        if k == self.fault_chunk and self.fault is Fault.DISCONNECT:
            self._finish(Fault.DISCONNECT.value)
            conn.close()
            return
        size = self.sizes[k]
        first = self.sent_tokens
        last = k == len(self.sizes) - 1
        payload = self._event(self.tokens[first : first + size], last)
        if k == 0:
            self._send_head()  # a no-op unless its timer tied with this one
            if self.chat:
                payload = self._role_event() + payload
        if k == self.fault_chunk and self.fault is Fault.MALFORMED:
            payload = _MALFORMED + payload
            self.record.fault = Fault.MALFORMED.value
        if last:
            payload += self._tail()
        now = sim.loop.time()
        if k == 0:
            sim.metrics.ttft.observe(now - self.arrived_at)
        else:
            sim.metrics.itl.observe(now - self.last_chunk_at)
        self.last_chunk_at = now
        self.record.chunk_wall_ns.append(time.time_ns())
        self.record.chunk_tokens.append(size)
        conn.write(encode_chunk(payload))
        self.sent_tokens += size
        if last:
            conn.write(LAST_CHUNK)
            self.record.http_status = 200
            self._finish(None)
            conn.response_done()
            return
        self.next_chunk = k + 1
        self.timer = sim.loop.call_at(self.first_token_at + self.offsets[k + 1], self._send_chunk)

    def _role_event(self) -> bytes:
        return (
            b'data: {"id":"%b","object":"chat.completion.chunk",%b,"choices":[{"index":0,'
            b'"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
            % (
                self.id.encode(),
                self._header,
            )
        )

    def _send_whole(self) -> None:
        """Non-streamed: the whole response at the last token's time."""
        self.timer = None
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
        now = self.sim.loop.time()
        self.sim.metrics.ttft.observe(self.first_token_at - self.arrived_at)
        self.record.chunk_wall_ns.append(time.time_ns())
        self.record.chunk_tokens.append(len(self.tokens))
        self.record.http_status = 200
        self.sent_tokens = len(self.tokens)
        self.last_chunk_at = now
        self._finish(None)
        conn.respond(200, _JSON, body)


class HttpProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered one at a time, in order."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.keep_alive = True
        self.generation: Generation | None = None
        self._head: RequestHead | None = None
        self._arrival_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.sim.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.sim.connections.discard(self)
        if self.generation is not None:
            self.generation.abort()
            self.generation = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        """Parse as many complete requests as the buffer holds (one answered at a time)."""
        while not self.busy and self.transport is not None:
            if self._head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEAD_BYTES:
                        self._fail(431, "request head too large")
                    return
                self._arrival_ns = time.time_ns()
                try:
                    self._head = parse_head(bytes(self.buffer[:end]))
                except HttpError as exc:
                    self._fail(exc.status, str(exc))
                    return
                del self.buffer[: end + 4]
            head = self._head
            if len(self.buffer) < head.content_length:
                return
            body = bytes(self.buffer[: head.content_length])
            del self.buffer[: head.content_length]
            self._head = None
            self.busy = True
            self.keep_alive = head.keep_alive
            self.sim.handle(self, head, body, self._arrival_ns)

    def _fail(self, status: int, message: str) -> None:
        self.keep_alive = False
        self.respond(status, _JSON, error_body(status, message))

    def write(self, data: bytes) -> None:
        """Write if still connected (a closed client just stops receiving)."""
        if self.transport is not None:
            self.transport.write(data)

    def respond(self, status: int, content_type: str, body: bytes) -> None:
        """A complete response with Content-Length, then the next pipelined request."""
        self.write(response_head(status, content_type, len(body), self.keep_alive) + body)
        self.response_done()

    def response_done(self) -> None:
        """The current response is complete: close or go on with the next request."""
        self.generation = None
        self.busy = False
        if not self.keep_alive:
            self.close()
        elif self.buffer:
            self._process()

    def close(self) -> None:
        """Close after flushing what was written."""
        if self.transport is not None:
            self.transport.close()
