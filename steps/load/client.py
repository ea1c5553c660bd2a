"""One streamed request -> one record.

The hot path of the load generator. Per network read: take `time.monotonic_ns()` first, then
split SSE events, then look at each event with a few `bytes.find` calls (C speed, no
allocation): is it a content chunk (non-empty `text`/`content`, or non-empty `token_ids`), how
many `token_ids` does it carry (commas between brackets), does it carry a non-null `usage`
(then, and only then, parse it as JSON: once per request). Content chunks are never decoded.

Errors become the record's status instead of exceptions (see steps.records.STATUSES):
httpx's exceptions are translated here, at the boundary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic_ns

import httpx

from steps.load.sse import SseSplitter
from steps.load.writer import RecordBuffer

__all__ = ["ChunkScan", "RequestSpec", "execute", "scan_chunk"]

_DONE = b"[DONE]"
_ERROR_BODY_BYTES = 300

#: Counts output tokens from the content payloads when the server gave no usage/token_ids.
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


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def execute(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    spec: RequestSpec,
    scheduled_ns: int,
    drain_deadline_ns: int,
    request_timeout_ns: int,
    text_key: bytes,
    buffer: RecordBuffer,
    count_fallback: FallbackCounter,
) -> tuple[str, int | None]:
    """Send one request, stream it, append its record; returns (status, TTFT ns or None)."""
    loop = asyncio.get_running_loop()
    chunk_ns: list[int] = []
    chunk_tokens: list[int] = []
    payloads: list[bytes] = []
    usage: dict[str, object] | None = None
    status = "ok"
    http_status: int | None = None
    error: str | None = None
    done = False
    sent: int | None = None
    request = client.build_request("POST", path, content=spec.body, headers=headers)
    # sent_ns is refined to the moment httpcore starts writing the request head (its trace
    # hook), so connection-pool and httpx overhead count as schedule delay, not as TTFT.
    stamps = [monotonic_ns()]

    async def trace(event: str, _info: object) -> None:
        if event == "http11.send_request_headers.started":
            stamps.append(monotonic_ns())

    request.extensions["trace"] = trace
    sent = stamps[0]
    limit_ns = sent + request_timeout_ns
    drain_hit = drain_deadline_ns < limit_ns
    deadline = drain_deadline_ns if drain_hit else limit_ns
    scan = ChunkScan()
    try:
        async with asyncio.timeout_at(loop.time() + (deadline - sent) / 1e9):
            response = await client.send(request, stream=True)
            try:
                http_status = response.status_code
                if http_status != 200:
                    body = await response.aread()
                    status = "http_error"
                    error = f"HTTP {http_status}: " + body[:_ERROR_BODY_BYTES].decode(
                        "utf-8", "replace"
                    )
                else:
                    splitter = SseSplitter()
                    async for raw in response.aiter_raw():
                        now = monotonic_ns()
                        for payload in splitter.feed(raw):
                            if payload.startswith(b"{") and payload.endswith(b"}"):
                                scan_chunk(payload, text_key, scan)
                                if scan.content:
                                    chunk_ns.append(now)
                                    payloads.append(payload)
                                    if scan.tokens >= 0:
                                        chunk_tokens.append(scan.tokens)
                                if scan.usage:
                                    usage = json.loads(payload).get("usage")
                                elif not scan.content and b'"error"' in payload:
                                    status, error = "protocol_error", _stream_error(payload)
                            elif payload == _DONE:
                                done = True
                            else:
                                status = "protocol_error"
                                error = "malformed SSE data: " + payload[:80].decode(
                                    "utf-8", "replace"
                                )
                    if status == "ok" and not done:
                        status, error = "protocol_error", "stream ended without data: [DONE]"
            finally:
                await response.aclose()
    except TimeoutError:
        status = "timeout"
        error = (
            "drain_timeout exceeded after the stage's send window"
            if drain_hit
            else f"request_timeout {request_timeout_ns / 1e9:g}s exceeded"
        )
    except httpx.TimeoutException as exc:
        status, error = "timeout", _error_text(exc)
    except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
        status, error = "connect_error", _error_text(exc)
    except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        status, error = "protocol_error", _error_text(exc)
    except asyncio.CancelledError:
        status, error = "cancelled", "run stopped while the request was in flight"
    end = monotonic_ns()
    sent = stamps[-1]

    prompt_tokens, prompt_src = spec.input_tokens, "client"
    output_tokens: int | None = None
    output_src: str | None = None
    mismatch: bool | None = None
    tokens_known = len(chunk_tokens) == len(chunk_ns) and bool(chunk_ns)
    if usage is not None:
        if isinstance(usage.get("prompt_tokens"), int):
            prompt_tokens, prompt_src = int(usage["prompt_tokens"]), "server"  # type: ignore[call-overload]
        if isinstance(usage.get("completion_tokens"), int):
            output_tokens, output_src = int(usage["completion_tokens"]), "server"  # type: ignore[call-overload]
            if tokens_known:
                mismatch = sum(chunk_tokens) != output_tokens
    if output_src is None and tokens_known:
        output_tokens, output_src = sum(chunk_tokens), "chunks"
    if output_src is None and status == "ok" and payloads:
        output_tokens, output_src = count_fallback(payloads), "client"
    buffer.add(
        stage=spec.stage,
        request_index=spec.index,
        scheduled_ns=scheduled_ns,
        sent_ns=sent,
        end_ns=end,
        chunk_ns=chunk_ns,
        chunk_tokens=chunk_tokens if tokens_known else None,
        requested_input_tokens=spec.input_tokens,
        requested_output_tokens=spec.output_tokens,
        prompt_tokens=prompt_tokens,
        prompt_tokens_source=prompt_src,
        output_tokens=output_tokens,
        output_tokens_source=output_src,
        mismatch=mismatch,
        status=status,
        http_status=http_status,
        error=error,
    )
    return status, (chunk_ns[0] - sent if chunk_ns else None)


def _stream_error(payload: bytes) -> str:
    """The message of an in-stream error event (vLLM sends `data: {"error": {...}}`)."""
    try:
        obj = json.loads(payload)
    except ValueError:
        return "error event in stream: " + payload[:200].decode("utf-8", "replace")
    err = obj.get("error") if isinstance(obj, dict) else None
    msg = err.get("message") if isinstance(err, dict) else err
    return f"error event in stream: {msg}"
