"""One streamed request -> one outcome (the fields of its record).

The hot path of the load generator. Per network read: take `time.monotonic_ns()` first, then
split SSE events, then look at each event with a few `bytes.find` calls (C speed, no
allocation): is it a content chunk (non-empty `text`/`content`, or non-empty `token_ids`), how
many `token_ids` does it carry (commas between brackets), does it carry a non-null `usage`
(then, and only then, parse it as JSON: once per request). Content chunks are never decoded.

All of that runs in the connection's read callback (`_Stream`), not in a coroutine: the
request's task sleeps on one future from the write until the response ends.

Errors become the outcome's status instead of exceptions (see steps.records.STATUSES):
refused/unreachable/TLS failure -> connect_error; request_timeout
or drain_timeout -> timeout; status != 200 -> http_error (first bytes of the error body in
`error`, a redirect's target too: it is never followed); malformed HTTP or SSE, an in-stream
error event, a disconnect mid-response, a stream without `[DONE]`, a 200 that is not an event
stream (compressed, or JSON from a server that ignored `stream`), negative `usage` counts, or
a stream past its size limits (`stream_limits`) -> protocol_error; run stopped -> cancelled. A
timeout, a cancel or a limit closes the connection at once: that is how the server learns to
stop generating. The worker records the outcome (steps.load.writer.RecordBuffer.add); this module
writes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic_ns

from steps.load.connection import AbortResponse, ConnectError, Connection, ConnectionPool
from steps.load.sse import EventTooLarge, SseSplitter
from steps.redact import redact_url

__all__ = [
    "ChunkScan",
    "FallbackCounter",
    "RequestOutcome",
    "RequestSpec",
    "StreamSettings",
    "scan_chunk",
    "stream_limits",
    "stream_request",
]

_DONE = b"[DONE]"
_ERROR_BODY_BYTES = 300
#: An error page or a JSON answer is read to its end (the connection stays reusable) up to this
#: size; a longer one is a server streaming garbage: the connection is closed instead.
_ERROR_BODY_LIMIT = 64 * 1024
#: A request length the limits assume when the spec has none: more than any served context.
_UNKNOWN_TOKENS = 1 << 18

#: Counts output tokens from the content payloads when the server gave no usage/token_ids;
#: raises ValueError for a payload that is not a completion chunk.
FallbackCounter = Callable[[list[bytes]], int]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request of the schedule, prepared before t0 (the body is final JSON bytes)."""

    stage: int
    index: int
    offset_ns: int
    body: bytes
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What every request of one worker shares: its connection pool, the request timeout (ns),
    the JSON key of the generated text (`b'"text"'`, or `b'"content"'` for chat), the
    client-side output token counter, and whether responses are streamed (api.streaming)."""

    pool: ConnectionPool
    request_timeout_ns: int
    text_key: bytes
    count_fallback: FallbackCounter
    streaming: bool = True


@dataclass(slots=True)
class RequestOutcome:
    """What one request produced: its record's fields, times in absolute monotonic ns (the
    writer stores them relative to t0; see steps.records for each column's meaning).

    `sent_ns` is None when the request was never written; `chunk_ns` holds one arrival time per
    content chunk, and `chunk_tokens` their token counts when every chunk carried `token_ids`.
    `cached_tokens` is the server's `usage.prompt_tokens_details.cached_tokens` (None: not said).
    A non-streamed answer has no chunks: `body_ns` is when its body was complete (its e2e end).
    `resent` is not a record column: the request was resent after a stale keep-alive close
    (steps.load.connection), which the worker counts for run.json's `resent_requests`.
    """

    spec: RequestSpec
    scheduled_ns: int
    sent_ns: int | None
    end_ns: int
    chunk_ns: list[int]
    chunk_tokens: list[int] | None
    prompt_tokens: int | None
    prompt_tokens_source: str | None
    output_tokens: int | None
    output_tokens_source: str | None
    mismatch: bool | None
    status: str
    http_status: int | None
    error: str | None
    resent: bool = False
    cached_tokens: int | None = None
    body_ns: int | None = None  # non-streamed: the read that completed the whole answer


@dataclass(slots=True)
class ChunkScan:
    """What one event payload says; `scan_chunk` fills it (reused, not allocated per chunk)."""

    content: bool = False
    tokens: int = -1  # -1: no token_ids field
    usage: bool = False


def scan_chunk(payload: bytes, text_key: bytes, out: ChunkScan) -> None:
    """Classify a JSON chunk cheaply: content?, token_ids count, usage present? (no parsing)."""
    start = payload.find(b'"choices"')
    if start < 0:
        start = 0
    tokens = -1
    k = payload.find(b'"token_ids"', start)
    if k >= 0:
        a = payload.find(b"[", k)
        b = payload.find(b"]", a)
        if a >= 0 and b > a:
            tokens = _count_ids(payload, a, b)
    content = tokens > 0
    if not content:
        content = _non_empty_string(payload, text_key, start)
        if not content and text_key == b'"content"':
            # Reasoning models stream thinking first; those are generated tokens too.
            content = _non_empty_string(payload, b'"reasoning_content"', start) or (
                _non_empty_string(payload, b'"reasoning"', start)
            )
    out.content = content
    out.tokens = tokens
    u = payload.find(b'"usage"', start)
    out.usage = u >= 0 and _value_starts_with(payload, u + 7, 0x7B)  # "{"


def _count_ids(payload: bytes, a: int, b: int) -> int:
    """Number of integers in payload[a:b+1] = '[1, 2, 3]'."""
    if b - a < 4 and not payload[a + 1 : b].strip():
        return 0
    return payload.count(b",", a, b) + 1


def _value_starts_with(payload: bytes, pos: int, char: int) -> bool:
    """Whether the JSON value after a key ending at `pos` (': ' skipped) starts with `char`."""
    n = len(payload)
    while pos < n and payload[pos] in b" :":
        pos += 1
    return pos < n and payload[pos] == char


def _non_empty_string(payload: bytes, key: bytes, start: int) -> bool:
    """Whether `key` is present with a non-empty string value."""
    k = payload.find(key, start)
    if k < 0:
        return False
    pos = k + len(key)
    n = len(payload)
    while pos < n and payload[pos] in b" :":
        pos += 1
    return pos + 1 < n and payload[pos] == 0x22 and payload[pos + 1] != 0x22


def stream_limits(spec: RequestSpec) -> tuple[int, int]:
    """(max SSE events, max bytes of one event) for a response to `spec`: real memory limits.

    Events: vLLM sends at most one event per generated token (a chunk carries at least one;
    coalescing only lowers the count), plus a role chunk (chat), a finish chunk, the usage
    chunk and `[DONE]`: max_tokens + 4. Twice max_tokens plus 64 leaves room for a server that
    splits a token's text over events, and still bounds what a stream of valid chunks that
    never ends can make a worker hold.
    Event bytes: a chunk is a few hundred bytes; the largest real one is the first with
    `prompt_token_ids` (return_token_ids), at most ~8 bytes per prompt token. 1 MiB plus 16
    bytes per prompt token holds it, and bounds a line that never ends.
    A length of 0 means unknown (warm-up requests carry none): it counts as `_UNKNOWN_TOKENS`.
    """
    output_tokens = spec.output_tokens or _UNKNOWN_TOKENS
    input_tokens = spec.input_tokens or _UNKNOWN_TOKENS
    return 2 * output_tokens + 64, (1 << 20) + 16 * input_tokens


class _Stream:
    """The response handler of one streamed request: all per-read work happens here.

    Runs inside the connection's `data_received` (see steps.load.connection): one timestamp per
    network read, shared by every event that read completed (they did arrive together), then
    the SSE split and the byte-level chunk scan. `future` resolves when the response ends.
    A body that is not an event stream, or one past `stream_limits`, raises AbortResponse.
    """

    __slots__ = (
        "chunk_ns",
        "chunk_tokens",
        "done",
        "error",
        "error_body",
        "error_body_left",
        "error_head",
        "events_left",
        "future",
        "http_status",
        "max_events",
        "payloads",
        "resent",
        "scan",
        "splitter",
        "stale",
        "status",
        "text_key",
        "usage",
    )

    def __init__(self, future: asyncio.Future[None], text_key: bytes, spec: RequestSpec) -> None:
        self.future = future
        self.text_key = text_key
        self.max_events, max_event_bytes = stream_limits(spec)
        self.events_left = self.max_events  # a countdown: the cheapest per-read check
        self.splitter = SseSplitter(max_event_bytes)
        self.scan = ChunkScan()
        self.chunk_ns: list[int] = []
        self.chunk_tokens: list[int] = []
        self.payloads: list[bytes] = []
        self.usage: dict[str, object] | None = None
        self.status = "ok"
        self.error: str | None = None
        self.http_status: int | None = None
        self.done = False
        self.stale = False
        self.resent = False
        # A body that is not the stream (an error page, JSON): its first bytes are collected
        # (bounded) and quoted in `error` after `error_head`.
        self.error_body: bytes | None = None
        self.error_body_left = _ERROR_BODY_LIMIT
        self.error_head = ""

    @property
    def ended(self) -> bool:
        """Whether the response ended (completely or in error), not merely stopped waiting.

        A timeout or cancel also leaves `future` done (cancelled), so `done()` cannot tell.
        """
        return self.future.done() and not self.future.cancelled()

    def fail(self, status: str, error: str) -> None:
        """Set the status, unless an earlier failure (the cause) already did."""
        if self.status == "ok":
            self.status, self.error = status, error

    def _quote_body(self, error_head: str) -> None:
        self.error_body = b""
        self.error_head = error_head

    def on_head(self, status: int, reason: str, headers: dict[str, str]) -> None:
        self.http_status = status
        if status != 200:
            location = headers.get("location") if 300 <= status < 400 else None
            self._quote_body(
                f"HTTP {status}"
                if location is None
                else f"HTTP {status} redirect to {redact_url(location)} (not followed)"
            )
            self.fail("http_error", f"HTTP {status} {reason}".rstrip())
            return
        coding = headers.get("content-encoding", "identity")
        if coding.lower() not in ("identity", ""):
            raise AbortResponse(
                f"response is Content-Encoding: {coding[:40]} although the request asked for "
                "identity (a proxy compressing the stream?)"
            )
        content_type = headers.get("content-type", "text/event-stream")
        if not content_type.lower().startswith("text/event-stream"):
            self._quote_body(
                f"HTTP 200 with Content-Type {content_type[:60]}, not text/event-stream: "
                'the server ignored "stream": true'
            )
            self.fail("protocol_error", self.error_head)

    def on_body(self, data: bytes, now_ns: int) -> None:
        if self.error_body is not None:
            if len(self.error_body) < _ERROR_BODY_BYTES:
                self.error_body += data[: _ERROR_BODY_BYTES - len(self.error_body)]
            self.error_body_left -= len(data)
            if self.error_body_left < 0:
                raise AbortResponse(f"body longer than {_ERROR_BODY_LIMIT} bytes, not read further")
            return
        try:
            payloads = self.splitter.feed(data)
        except EventTooLarge as exc:
            raise AbortResponse(str(exc)) from None
        left = self.events_left = self.events_left - len(payloads)
        if left < 0:
            raise AbortResponse(
                f"more than {self.max_events} SSE events in one response "
                "(2 x max_tokens + 64): the stream does not end"
            )
        scan = self.scan
        for payload in payloads:
            if payload.startswith(b"{") and payload.endswith(b"}"):
                scan_chunk(payload, self.text_key, scan)
                if scan.content:
                    self.chunk_ns.append(now_ns)
                    self.payloads.append(payload)
                    if scan.tokens >= 0:
                        self.chunk_tokens.append(scan.tokens)
                if scan.usage:
                    try:
                        usage = json.loads(payload).get("usage")
                    except (ValueError, AttributeError) as exc:
                        self.fail("protocol_error", f"usage chunk is not JSON: {exc}")
                    else:
                        self.usage = usage if isinstance(usage, dict) else None
                elif not scan.content and b'"error"' in payload:
                    self.fail("protocol_error", _stream_error(payload))
            elif payload == _DONE:
                self.done = True
            else:
                self.fail(
                    "protocol_error",
                    "malformed SSE data: " + payload[:80].decode("utf-8", "replace"),
                )

    def on_end(self) -> None:
        if self.error_body is not None:
            text = self.error_body.decode("utf-8", "replace")
            self.error = f"{self.error_head}: {text}"
        elif not self.done:
            self.fail("protocol_error", "stream ended without data: [DONE]")
        if not self.future.done():
            self.future.set_result(None)

    def on_stale(self) -> None:
        self.stale = True
        if not self.future.done():
            self.future.set_result(None)

    def on_error(self, message: str) -> None:
        if self.error_body is not None:  # keep the HTTP status; say the body was cut short
            text = self.error_body.decode("utf-8", "replace")
            self.error = f"{self.error_head} ({message}): {text}"
        self.fail("protocol_error", message)
        if not self.future.done():
            self.future.set_result(None)


class _WholeBody(_Stream):
    """The response handler of a non-streamed request (api.streaming false): the answer is one
    JSON body, so there is no first token to time: only its end (`body_ns`, e2e). The body is
    collected up to a real limit and parsed once, at its end: usage, and the text for a
    client-side count when the server gave none."""

    __slots__ = ("body", "body_left", "body_ns")

    def __init__(self, future: asyncio.Future[None], text_key: bytes, spec: RequestSpec) -> None:
        super().__init__(future, text_key, spec)
        self.body: bytearray | None = None
        # As an event's limit, plus what max_tokens of text and token ids can take.
        self.body_left = stream_limits(spec)[1] + 64 * (spec.output_tokens or _UNKNOWN_TOKENS)
        self.body_ns: int | None = None

    def on_head(self, status: int, reason: str, headers: dict[str, str]) -> None:
        if status != 200:
            super().on_head(status, reason, headers)
            return
        self.http_status = status
        content_type = headers.get("content-type", "application/json")
        if not content_type.lower().startswith("application/json"):
            self._quote_body(f"HTTP 200 with Content-Type {content_type[:60]}, not JSON")
            self.fail("protocol_error", self.error_head)
            return
        self.body = bytearray()

    def on_body(self, data: bytes, now_ns: int) -> None:
        if self.body is None:
            super().on_body(data, now_ns)
            return
        self.body_left -= len(data)
        if self.body_left < 0:
            raise AbortResponse("answer body past its size limit (max_tokens of text and ids)")
        self.body += data
        self.body_ns = now_ns

    def on_end(self) -> None:
        if self.body is not None:
            self.done = True
            self._parse(bytes(self.body))
        super().on_end()

    def _parse(self, body: bytes) -> None:
        try:
            answer = json.loads(body)
            choice = answer["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self.fail("protocol_error", f"answer is not a completion: {type(exc).__name__}")
            return
        usage = answer.get("usage") if isinstance(answer, dict) else None
        self.usage = usage if isinstance(usage, dict) else None
        ids = choice.get("token_ids") if isinstance(choice, dict) else None
        if isinstance(ids, list):
            self.chunk_tokens = [len(ids)]
        self.payloads = [body]


async def stream_request(
    settings: StreamSettings,
    request: tuple[bytes, bytes],
    spec: RequestSpec,
    scheduled_ns: int,
    drain_deadline_ns: int,
    send_at_ns: int | None = None,
) -> RequestOutcome:
    """Send one request (`request` = its encoded head and body), stream it, return its outcome.

    With `send_at_ns` (the worker woke early after a long idle wait, steps.load.clock) the
    connection is taken first and the write waits for that time; otherwise it is written now.

    `sent_ns` is taken just before the request is written to the socket, so waiting for a
    connection counts as schedule delay, not as TTFT; it is None when the request was never
    written (connect error, or timeout/cancel while connecting). A pooled connection the server
    closed before any byte of the response, soon after the write (a stale keep-alive connection,
    see steps.load.connection), gets the request resent once on a new connection (`resent`):
    `sent_ns` is then the resend's, so the lost attempt shows as schedule delay, never as TTFT.
    The resend shares the request's deadline; a timeout or cancel during it closes the new
    connection as any other.
    """
    loop = asyncio.get_running_loop()
    handler = _Stream if settings.streaming else _WholeBody
    stream = handler(loop.create_future(), settings.text_key, spec)
    now = monotonic_ns()
    # The budget counts from the planned write, not from an early wake-up (steps.load.clock).
    limit_ns = max(now, send_at_ns or now) + settings.request_timeout_ns
    drain_hit = drain_deadline_ns < limit_ns
    deadline = drain_deadline_ns if drain_hit else limit_ns
    pool = settings.pool
    conn: Connection | None = None
    sent: int | None = None
    try:
        async with asyncio.timeout_at(loop.time() + (deadline - now) / 1e9):
            conn, sent = await pool.send(request, stream, at_ns=send_at_ns)
            await stream.future
            if stream.stale:
                stream.stale, stream.future = False, loop.create_future()
                stream.resent = True
                conn, sent = None, None  # a resend that fails to connect was never written
                conn, sent = await pool.send(request, stream, new=True)
                await stream.future
    except TimeoutError:
        stream.status = "timeout"
        stream.error = (
            "drain_timeout exceeded after the stage's send window"
            if drain_hit
            else f"request_timeout {settings.request_timeout_ns / 1e9:g}s exceeded"
        )
    except ConnectError as exc:
        stream.status, stream.error = "connect_error", str(exc)
    except asyncio.CancelledError:
        stream.status, stream.error = "cancelled", "run stopped while the request was in flight"
    end = monotonic_ns()
    if conn is not None and not stream.ended:
        # Timeout or cancel: closing is the only way to tell the server to stop generating
        # (and free its slot); the connection could never be reused anyway.
        conn.abort()
    return _outcome(stream, spec, scheduled_ns, sent, end, settings.count_fallback)


def _outcome(
    stream: _Stream,
    spec: RequestSpec,
    scheduled_ns: int,
    sent_ns: int | None,
    end_ns: int,
    count_fallback: FallbackCounter,
) -> RequestOutcome:
    """The outcome of an ended stream: token counts from the best source there is.

    Prompt tokens: the server's usage, else the requested length. Output tokens: the server's
    usage, else the summed `token_ids` of the chunks, else the client tokenizer's count
    (only then are content chunks decoded). `mismatch`: usage and summed token_ids disagree.
    """
    chunk_ns, chunk_tokens, usage = stream.chunk_ns, stream.chunk_tokens, stream.usage
    prompt_tokens, prompt_src = spec.input_tokens, "client"
    output_tokens: int | None = None
    output_src: str | None = None
    mismatch: bool | None = None
    body_ns = stream.body_ns if isinstance(stream, _WholeBody) else None
    tokens_known = len(chunk_tokens) == len(chunk_ns) and bool(chunk_ns)
    if body_ns is not None and len(chunk_tokens) == 1:  # a whole answer's token_ids
        tokens_known = True
    if usage is not None:
        served_prompt = _usage_count(usage, "prompt_tokens", stream)
        if served_prompt is not None:
            prompt_tokens, prompt_src = served_prompt, "server"
        output_tokens = _usage_count(usage, "completion_tokens", stream)
        if output_tokens is not None:
            output_src = "server"
            if tokens_known:
                mismatch = sum(chunk_tokens) != output_tokens
    if output_src is None and tokens_known:
        output_tokens, output_src = sum(chunk_tokens), "chunks"
    if output_src is None and stream.status == "ok" and stream.payloads:
        try:
            output_tokens, output_src = count_fallback(stream.payloads), "client"
        except ValueError as exc:  # only now are content chunks decoded: a broken one shows
            stream.fail("protocol_error", f"content chunk is not a completion chunk: {exc}")
    cached_tokens = _cached_tokens(usage, stream)  # before `status`: a bad one fails it
    return RequestOutcome(
        spec=spec,
        scheduled_ns=scheduled_ns,
        sent_ns=sent_ns,
        end_ns=end_ns,
        chunk_ns=chunk_ns,
        chunk_tokens=chunk_tokens if tokens_known and body_ns is None else None,
        prompt_tokens=prompt_tokens,
        prompt_tokens_source=prompt_src,
        output_tokens=output_tokens,
        output_tokens_source=output_src,
        mismatch=mismatch,
        status=stream.status,
        http_status=stream.http_status,
        error=stream.error,
        resent=stream.resent,
        cached_tokens=cached_tokens,
        body_ns=body_ns,
    )


def _cached_tokens(usage: dict[str, object] | None, stream: _Stream) -> int | None:
    """`usage.prompt_tokens_details.cached_tokens`: prefix-cache hits (None: not said)."""
    details = usage.get("prompt_tokens_details") if usage is not None else None
    return _usage_count(details, "cached_tokens", stream) if isinstance(details, dict) else None


def _usage_count(usage: dict[str, object], key: str, stream: _Stream) -> int | None:
    """`usage[key]` when it is a count (a non-negative int); a negative one fails the stream
    (it would make throughput negative); anything else is ignored, as if absent."""
    value = usage.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if value < 0:
        where = "prompt_tokens_details." if key == "cached_tokens" else ""
        stream.fail("protocol_error", f"usage.{where}{key} is negative: {value}")
        return None
    return value


def _stream_error(payload: bytes) -> str:
    """The message of an in-stream error event (vLLM sends `data: {"error": {...}}`)."""
    try:
        obj = json.loads(payload)
    except ValueError:
        return "error event in stream: " + payload[:200].decode("utf-8", "replace")
    err = obj.get("error") if isinstance(obj, dict) else None
    msg = err.get("message") if isinstance(err, dict) else err
    return f"error event in stream: {msg}"
