"""The simulator's asyncio server: one Protocol per connection, one SimSequence per request.

Why callbacks instead of coroutines: requests are parsed in `data_received` and handed to the
continuous-batching `Engine`, whose one timer per decode step writes every running stream's next
pre-built chunk. No task, no sleep future, no timer and no JSON encoder run per chunk, which keeps
the CPU cost per 128-chunk request far below the 2 ms budget.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, cast

from steps.simulator.config import SimulatorConfig
from steps.simulator.engine import Engine
from steps.simulator.http1 import (
    JSON_TYPE,
    MAX_HEAD_BYTES,
    HttpError,
    RequestHead,
    parse_head,
    response_head,
)
from steps.simulator.latency import Fault, LatencyModel, NoiseModel, pick_fault
from steps.simulator.metrics import KvCache, Metrics
from steps.simulator.sequence import SimSequence
from steps.simulator.tokens import TokenModel
from steps.simulator.truth import TruthRecord, TruthStore

__all__ = ["HttpProtocol", "Simulator"]

log = logging.getLogger(__name__)

_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
_DEFAULT_MAX_TOKENS = 16  # vLLM's default for /v1/completions
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
    """State shared by all connections: settings, engine, truth, metrics, seeded RNG."""

    def __init__(
        self,
        config: SimulatorConfig,
        tokens: TokenModel,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.loop = loop
        self.rng = random.Random(config.seed)
        self.noise = NoiseModel(
            ttft_jitter=config.ttft_jitter,
            itl_jitter=config.itl_jitter,
            stall_rate=config.stall_rate,
            stall_ms=config.stall_ms,
            level_drift=config.level_drift,
        )
        # One level per process = per run: a restarted simulator is another night.
        level = self.noise.run_level(self.rng)
        self.latency = LatencyModel(
            ttft_s=config.ttft_ms / 1e3 * level,
            itl_s=config.itl_ms / 1e3 * level,
            prefill_s_per_token=config.prefill_us_per_token / 1e6,
            tokens_per_chunk=config.tokens_per_chunk,
        )
        self.truth = TruthStore()
        self.metrics = Metrics(config.model, KvCache(config.kv_cache_tokens, self.latency.itl_s))
        self.engine = Engine(loop, self.latency.itl_s, config.max_num_seqs, self.metrics.itl)
        self.ready_at = loop.time() + config.startup_delay_s
        self.connections: set[HttpProtocol] = set()
        self.model_json = json.dumps(config.model).encode()
        self._created = int(time.time())

    # -- routes ------------------------------------------------------------------------------

    def handle(self, conn: HttpProtocol, head: RequestHead, body: bytes, arrival_ns: int) -> None:
        """Answer one request; generation requests finish later through their SimSequence."""
        path, method = head.path, head.method
        if path in ("/v1/completions", "/v1/chat/completions"):
            if method != "POST":
                conn.respond(405, JSON_TYPE, b'{"detail":"Method Not Allowed"}')
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
            conn.respond(405, JSON_TYPE, b'{"detail":"Method Not Allowed"}')
        else:
            conn.respond(404, JSON_TYPE, b'{"detail":"Not Found"}')

    def starting(self) -> bool:
        """True during --startup-delay-s (a model server still loading weights)."""
        return self.loop.time() < self.ready_at

    def _health(self, conn: HttpProtocol) -> None:
        if self.starting():
            conn.respond(503, JSON_TYPE, error_body(503, "model is still loading"))
        else:
            conn.respond(200, JSON_TYPE, b"")

    def _models(self, conn: HttpProtocol) -> None:
        if self.starting():
            conn.respond(503, JSON_TYPE, error_body(503, "model is still loading"))
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
        conn.respond(200, JSON_TYPE, json.dumps({"object": "list", "data": [card]}).encode())

    def _metrics(self, conn: HttpProtocol) -> None:
        conn.respond(
            200,
            _PROMETHEUS,
            self.metrics.render(
                self.engine.queue.running, self.engine.queue.waiting, time.monotonic()
            ),
        )

    def _truth(self, conn: HttpProtocol) -> None:
        conn.respond(200, JSON_TYPE, self.truth.to_json())

    def _truth_reset(self, conn: HttpProtocol) -> None:
        cleared = self.truth.reset()
        log.info("truth reset: %d records cleared", cleared)
        conn.respond(200, JSON_TYPE, json.dumps({"cleared": cleared}).encode())

    # -- generation ----------------------------------------------------------------------------

    def _generate(
        self, conn: HttpProtocol, head: RequestHead, body: bytes, arrival_ns: int, chat: bool
    ) -> None:
        record = self.truth.add(head.headers.get("x-request-id"), arrival_ns)
        try:
            request = self._parse_request(body, chat, record)
        except RequestError as exc:
            record.http_status = exc.status
            conn.respond(exc.status, JSON_TYPE, error_body(exc.status, str(exc)))
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
            conn.respond(status, JSON_TYPE, error_body(status, f"injected fault: {fault.value}"))
            return
        seq = SimSequence(self, conn, record, request, fault, chat)
        conn.sequence = seq
        seq.arrive()

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
        # `type(t) is int` excludes bools; the set of types is built in C (~3x a generator).
        if isinstance(prompt, list) and prompt and set(map(type, prompt)) == {int}:
            return len(prompt)
        raise RequestError(
            400, "prompt must be a non-empty string or list of token ids (batches not supported)"
        )

    def _count_chat(self, request: dict[str, Any]) -> int:
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages must be a non-empty list")
        try:
            return self.tokens.count_chat(messages)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None

    def close_all(self) -> None:
        """Drop every connection (shutdown): streams in flight end abruptly, as in vLLM."""
        self.engine.close()
        for conn in list(self.connections):
            conn.close()


class HttpProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered one at a time, in order."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.keep_alive = True
        self.sequence: SimSequence | None = None
        self._head: RequestHead | None = None
        self._arrival_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.sim.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.sim.connections.discard(self)
        if self.sequence is not None:
            self.sequence.abort()
            self.sequence = None

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
        self.respond(status, JSON_TYPE, error_body(status, message))

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
        self.sequence = None
        self.busy = False
        if not self.keep_alive:
            self.close()
        elif self.buffer:
            self._process()

    def close(self) -> None:
        """Close after flushing what was written."""
        if self.transport is not None:
            self.transport.close()
