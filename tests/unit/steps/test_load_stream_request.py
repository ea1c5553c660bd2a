"""steps.load.stream_request: cheap chunk classification on real vLLM/OpenAI shapes, and
`stream_request`'s status mapping over a real socket, against a scripted hostile peer
(tests/fakes/hostile.py): exact wire conditions the simulator cannot produce on demand. The
outcomes are recorded through the worker's RecordBuffer, so each test reads the row as stored."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from steps.load.connection import STALE_CLOSE_WINDOW_S, ConnectionPool
from steps.load.http1 import encode_request
from steps.load.stream_request import (
    ChunkScan,
    FallbackCounter,
    RequestSpec,
    StreamSettings,
    scan_chunk,
    stream_request,
)
from steps.load.worker import text_of_chunk
from steps.load.writer import RecordBuffer
from tests.fakes.hostile import (
    Behaviour,
    HostileServer,
    content_chunk,
    drip,
    endless_body,
    endless_chunks,
    endless_sse_line,
    gzip_sse,
    hang,
    json_completion,
    raw,
    redirect,
    reset,
    run_with_server,
    sse,
    usage_chunk,
)

_TEXT = b'"text"'
_CONTENT = b'"content"'


def _scan(payload: bytes, key: bytes = _TEXT) -> ChunkScan:
    out = ChunkScan()
    scan_chunk(payload, key, out)
    return out


@pytest.mark.parametrize(
    ("payload", "content", "tokens", "usage"),
    [
        # vLLM completion content chunk with return_token_ids, 3 coalesced tokens
        (
            b'{"id":"c","object":"text_completion","model":"m","choices":[{"index":0,'
            b'"text":" a b c","logprobs":null,"finish_reason":null,"token_ids":[264, 293, 272]}]}',
            True,
            3,
            False,
        ),
        # python json.dumps spacing, no token_ids
        (b'{"choices": [{"index": 0, "text": " the"}], "usage": null}', True, -1, False),
        # empty text finish chunk with empty token_ids
        (
            b'{"choices":[{"index":0,"text":"","finish_reason":"length","token_ids":[]}]}',
            False,
            0,
            False,
        ),
        # usage chunk
        (
            b'{"choices":[],"usage":{"prompt_tokens":512,"completion_tokens":128}}',
            False,
            -1,
            True,
        ),
        # token ids but text withheld (partial UTF-8): still a token arrival
        (b'{"choices":[{"text":"","token_ids":[151]}]}', True, 1, False),
        # prompt_token_ids must not be taken for token_ids
        (b'{"choices":[{"text":"x","prompt_token_ids":[1,2,3]}]}', True, -1, False),
    ],
)
def test_scan_chunk_completion_shapes(
    payload: bytes, content: bool, tokens: int, usage: bool
) -> None:
    out = _scan(payload)
    assert (out.content, out.tokens, out.usage) == (content, tokens, usage)


def test_scan_chunk_chat_role_only_delta_is_not_content() -> None:
    role = b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
    assert not _scan(role, _CONTENT).content


def test_scan_chunk_chat_content_and_reasoning_are_content() -> None:
    assert _scan(b'{"choices":[{"delta":{"content":"Hi"}}]}', _CONTENT).content
    thinking = b'{"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}'
    assert _scan(thinking, _CONTENT).content


def test_scan_chunk_model_named_text_does_not_fool_completion_check() -> None:
    payload = b'{"model":"text","choices":[{"text":""}]}'
    assert not _scan(payload).content


# -- stream_request: one request over a real socket, every outcome mapped to its status ----------

_OK_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
_CHUNK = b'{"choices":[{"index":0,"text":" the","token_ids":[279]}]}'
_USAGE = b'{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}'


def _frame(event: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(event), event)


def _sse(payload: bytes) -> bytes:
    return _frame(b"data: " + payload + b"\n\n")


_END = b"0\r\n\r\n"
_GOOD = [_OK_HEAD, _sse(_CHUNK), _sse(_CHUNK), _sse(_USAGE), _sse(b"[DONE]") + _END]


def _fallback(payloads: list[bytes]) -> int:
    return len(payloads)


async def _request(
    settings: StreamSettings, i: int, buffer: RecordBuffer, lengths: tuple[int, int] = (7, 2)
) -> bool:
    """Request `i` (input, output `lengths`), its record into `buffer` (t0 = 0); returns its
    outcome's `resent` flag (not a record column)."""
    pool = settings.pool
    request = encode_request("POST", "/v1/completions", pool.host_header, {}, b"{}")
    now = time.monotonic_ns()
    spec = RequestSpec(0, i, 0, b"{}", *lengths)
    outcome = await stream_request(settings, request, spec, now, now + 10**12)
    buffer.add(outcome)
    return outcome.resent


async def _requests(
    url: str,
    n: int,
    timeout_s: float,
    fallback: FallbackCounter,
    buffer: RecordBuffer,
    lengths: tuple[int, int] = (7, 2),
    pre_open: bool = False,
) -> list[bool]:
    """Run n requests one after another on one pool (see `_request`); returns their `resent`
    flags. `pre_open` opens an idle connection first, as a worker does."""
    pool = ConnectionPool(url)
    settings = StreamSettings(pool, round(timeout_s * 1e9), b'"text"', fallback)
    if pre_open:
        await pool.open_idle()
    resent = [await _request(settings, i, buffer, lengths) for i in range(n)]
    pool.close()
    return resent


def _rows(buffer: RecordBuffer, resent: list[bool]) -> list[dict[str, Any]]:
    """The stored records, each with its outcome's `resent` flag added as "resent"."""
    rows = buffer.take_table().to_pylist()
    for row, flag in zip(rows, resent, strict=True):
        row["resent"] = flag
    return rows


def _reply(*pieces: bytes, close: bool = False, pause_s: float = 0.005) -> Behaviour:
    """Write `pieces` 5 ms apart (separate reads), then keep the connection or close it."""
    return raw(*pieces, pause_s=pause_s, keep_alive=not close)


def _stream_all(
    replies: list[Behaviour],
    n: int,
    timeout_s: float = 5.0,
    fallback: FallbackCounter = _fallback,
    pre_open: bool = False,
) -> tuple[list[dict[str, Any]], HostileServer]:
    """Run n requests one after another on one pool; returns their records (see `_rows`)."""
    buffer = RecordBuffer("r", 0, 0, 0)

    async def body(server: HostileServer) -> list[bool]:
        return await _requests(server.url, n, timeout_s, fallback, buffer, pre_open=pre_open)

    resent, server = run_with_server(replies, body)
    return _rows(buffer, resent), server


#: How soon after the client gave up the server must have seen the close: far below the time
#: the client's loop stays up afterwards, generous for a loaded 2-core machine.
_CLOSE_SEEN_NS = 500_000_000


def _drop_leftovers(server: HostileServer) -> None:
    """Stop the server from inside the client's loop: uvloop's close would hang on a
    connection the client left open (the bug these tests catch) instead of failing."""
    server.stop()
    time.sleep(0.05)


def _stream_hostile(
    server: HostileServer,
    timeout_s: float = 5.0,
    hold_s: float = 0.0,
    lengths: tuple[int, int] = (7, 2),
) -> dict[str, Any]:
    """One request against the hostile server; the loop then stays up `hold_s` more seconds,
    so a connection left open is not closed by the loop's shutdown before the test looks."""
    buffer = RecordBuffer("r", 0, 0, 0)

    async def body() -> None:
        try:
            await _requests(server.url, 1, timeout_s, _fallback, buffer, lengths)
            await asyncio.sleep(hold_s)
        finally:
            _drop_leftovers(server)

    uvloop.run(body())
    (row,) = buffer.take_table().to_pylist()
    return row


def test_stream_request_complete_stream_ok_with_server_counts() -> None:
    rows, _ = _stream_all([_reply(*_GOOD)], 1)
    (row,) = rows
    assert (row["status"], row["http_status"], row["error"]) == ("ok", 200, None)
    assert (row["prompt_tokens"], row["prompt_tokens_source"]) == (7, "server")
    assert (row["output_tokens"], row["output_tokens_source"]) == (2, "server")
    assert row["chunk_tokens"] == [1, 1]
    assert row["cached_tokens"] is None  # the server did not say
    # Two reads 5 ms apart: two distinct arrival times, in order.
    assert row["chunk_offsets_us"][1] - row["chunk_offsets_us"][0] > 2000


@pytest.mark.parametrize(
    ("details", "status", "cached"),
    [
        (b'{"cached_tokens":5}', "ok", 5),
        (b"null", "ok", None),  # vLLM without --enable-prompt-tokens-details
        (b'{"cached_tokens":-1}', "protocol_error", None),
        (b'{"cached_tokens":4294967296}', "protocol_error", None),  # does not fit int32
    ],
)
def test_stream_request_cached_tokens_from_prompt_tokens_details(
    details: bytes, status: str, cached: int | None
) -> None:
    usage = (
        b'{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,'
        b'"prompt_tokens_details":%b}}' % details
    )
    reply = [_OK_HEAD, _sse(_CHUNK), _sse(_CHUNK), _sse(usage), _sse(b"[DONE]") + _END]
    rows, _ = _stream_all([_reply(*reply)], 1)
    (row,) = rows
    assert (row["status"], row["cached_tokens"]) == (status, cached)
    assert row["prompt_tokens"] == 7


def test_stream_request_events_in_one_read_share_its_timestamp() -> None:
    rows, _ = _stream_all([_reply(b"".join(_GOOD))], 1)
    offsets = rows[0]["chunk_offsets_us"]
    assert rows[0]["status"] == "ok" and len(offsets) == 2 and offsets[0] == offsets[1]


@pytest.mark.parametrize(
    ("pieces", "close", "status", "error_part"),
    [
        (
            [b"HTTP/1.1 503 Busy\r\ncontent-length: 16\r\n\r\n", b'{"error":"busy"}'],
            False, "http_error", 'HTTP 503: {"error":"busy"}',
        ),
        ([_OK_HEAD, _sse(_CHUNK)], True, "protocol_error", "before the response ended"),
        ([], True, "protocol_error", "without sending a response"),
        ([_OK_HEAD, _sse(b"not json"), _sse(b"[DONE]") + _END], False, "protocol_error",
         "malformed SSE data: not json"),
        ([_OK_HEAD, _sse(_CHUNK), _END], False, "protocol_error", "without data: [DONE]"),
        ([_OK_HEAD, _sse(b'{"error":{"message":"boom"}}'), _sse(b"[DONE]") + _END], False,
         "protocol_error", "error event in stream: boom"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"], False,
         "protocol_error", "malformed HTTP response"),
    ],
)  # fmt: skip
def test_stream_request_failure_maps_to_status(
    pieces: list[bytes], close: bool, status: str, error_part: str
) -> None:
    rows, _ = _stream_all([_reply(*pieces, close=close)], 1)
    assert rows[0]["status"] == status
    assert error_part in rows[0]["error"]


def test_stream_request_stale_keep_alive_close_resent_once_on_new_connection_ok() -> None:
    # Request 2 goes out on the kept-alive connection, which the server closes unanswered
    # (as uvicorn does when its idle close crosses the request).
    script = [_reply(*_GOOD), _reply(close=True), _reply(*_GOOD)]
    rows, server = _stream_all(script, 2)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [r["resent"] for r in rows] == [False, True]
    assert [len(c.requests) for c in server.connections] == [2, 1]
    lost, resent = server.connections[0].requests[1], server.connections[1].requests[0]
    # sent_ns is the resend's write: after the lost attempt, before the server read it again.
    assert lost.received_ns < rows[1]["sent_ns"] <= resent.received_ns
    assert rows[1]["sent_ns"] > rows[1]["scheduled_ns"]


def test_stream_request_pre_opened_connection_closed_unanswered_resent_ok() -> None:
    rows, server = _stream_all([_reply(close=True), _reply(*_GOOD)], 1, pre_open=True)
    assert rows[0]["status"] == "ok"
    assert [len(c.requests) for c in server.connections] == [1, 1]


@pytest.mark.parametrize("served_before", [False, True], ids=["new", "reused"])
def test_stream_request_server_closing_unanswered_protocol_error_no_resend_loop(
    served_before: bool,
) -> None:
    script = [_reply(*_GOOD), _reply(close=True)] if served_before else [_reply(close=True)]
    rows, server = _stream_all(script, 2 if served_before else 1)
    assert rows[-1]["status"] == "protocol_error"
    assert "without sending a response" in rows[-1]["error"]
    # A new connection is never resent on; a reused one is resent on once, on a new one.
    assert [len(c.requests) for c in server.connections] == ([2, 1] if served_before else [1])


@pytest.mark.parametrize(
    ("reply", "error_part"),
    [
        (_reply(b"HTTP/1.1 200 O", close=True), "before the response ended"),
        # The server answered (an interim head), so it did read the request.
        (_reply(b"HTTP/1.1 100 Continue\r\n\r\n", close=True), "before the response ended"),
        # The server worked on the request, then closed without a byte: not a stale close.
        (raw(b"", b"", pause_s=STALE_CLOSE_WINDOW_S + 0.3), "without sending a response"),
    ],
    ids=["part-of-head", "interim-100", "later-than-window"],
)
def test_stream_request_reused_connection_not_stale_protocol_error_no_resend(
    reply: Behaviour, error_part: str
) -> None:
    rows, server = _stream_all([_reply(*_GOOD), reply], 2)
    assert (rows[1]["status"], rows[1]["resent"]) == ("protocol_error", False)
    assert error_part in rows[1]["error"]
    assert [len(c.requests) for c in server.connections] == [2]


def test_stream_request_reused_connection_reset_before_any_byte_resent_ok() -> None:
    rows, server = _stream_all([_reply(*_GOOD), reset(), _reply(*_GOOD)], 2)
    assert [(r["status"], r["resent"]) for r in rows] == [("ok", False), ("ok", True)]
    assert [len(c.requests) for c in server.connections] == [2, 1]
    assert server.connections[0].server_closed_ns is not None  # the server's reset, not ours


async def _until_resent(server: HostileServer) -> None:
    """Wait until the resend reached the server (its second connection's request)."""
    deadline = time.monotonic() + 10
    while not (len(server.connections) == 2 and server.connections[1].requests):
        assert time.monotonic() < deadline, "the request was not resent"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("ending", ["timeout", "cancel"])
def test_stream_request_timeout_or_cancel_during_resend_closes_new_connection(
    hostile_server: Callable[..., HostileServer], ending: str
) -> None:
    # The resend shares the request's deadline (and its task): its connection is closed at
    # once like any other, the row says timeout/cancelled with the resend's sent_ns.
    server = hostile_server([_reply(*_GOOD), _reply(close=True), hang()])
    buffer = RecordBuffer("r", 0, 0, 0)

    async def body() -> list[bool]:
        task = asyncio.get_running_loop().create_task(
            _requests(server.url, 2, 1.0 if ending == "timeout" else 30.0, _fallback, buffer)
        )
        try:
            if ending == "cancel":
                await _until_resent(server)
                task.cancel()
            resent = await task
            await asyncio.sleep(1.0)
        finally:
            _drop_leftovers(server)
        return resent

    rows = _rows(buffer, uvloop.run(body()))
    expected = "timeout" if ending == "timeout" else "cancelled"
    assert (rows[1]["status"], rows[1]["resent"]) == (expected, True)
    lost, resend = server.connections
    assert len(lost.requests) == 2 and len(resend.requests) == 1
    assert rows[1]["sent_ns"] <= resend.requests[0].received_ns
    assert resend.client_closed_ns is not None
    assert resend.client_closed_ns - rows[1]["end_ns"] < _CLOSE_SEEN_NS


def test_stream_request_resend_connect_refused_connect_error_never_sent(
    hostile_server: Callable[..., HostileServer],
) -> None:
    server = hostile_server([_reply(*_GOOD), _reply(close=True)])
    buffer = RecordBuffer("r", 0, 0, 0)

    async def body() -> list[bool]:
        pool = ConnectionPool(server.url)
        settings = StreamSettings(pool, round(5e9), b'"text"', _fallback)
        resent = [await _request(settings, 0, buffer)]
        server.stop_accepting()  # the kept-alive connection goes on; a new one is refused
        resent.append(await _request(settings, 1, buffer))
        pool.close()
        return resent

    rows = _rows(buffer, uvloop.run(body()))
    assert rows[0]["status"] == "ok"
    assert (rows[1]["status"], rows[1]["resent"]) == ("connect_error", True)
    assert rows[1]["sent_ns"] is None  # the lost attempt is not a send: the row was never sent
    assert [len(c.requests) for c in server.connections] == [2]


def test_stream_request_broken_content_chunk_counted_client_side_protocol_error_row_kept() -> None:
    # No usage, no token_ids: the client counts tokens itself and only then parses the chunk.
    broken = b'{"choices":[{"index":0,"text":" the"}]}}'
    reply = _reply(_OK_HEAD, _sse(broken), _sse(b"[DONE]") + _END)

    def count(payloads: list[bytes]) -> int:
        return sum(len(text_of_chunk(p).split()) for p in payloads)

    rows, _ = _stream_all([reply], 1, fallback=count)
    (row,) = rows
    assert row["status"] == "protocol_error"
    assert "content chunk is not a completion chunk" in row["error"]
    assert row["output_tokens"] is None


def test_stream_request_slow_server_timeout_status_and_connection_dropped() -> None:
    slow = _reply(_OK_HEAD, _sse(_CHUNK), _sse(_CHUNK), pause_s=0.3)
    rows, server = _stream_all([slow, _reply(*_GOOD)], 2, timeout_s=0.2)
    assert rows[0]["status"] == "timeout" and "request_timeout 0.2s" in rows[0]["error"]
    assert rows[1]["status"] == "ok"
    assert len(server.connections) == 2  # the timed-out connection was not reused


def test_stream_request_refused_connect_error_not_sent() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        buffer = RecordBuffer("r", 0, 0, 0)
        uvloop.run(_requests(url, 1, 5.0, _fallback, buffer))
    rows = buffer.take_table().to_pylist()
    assert rows[0]["status"] == "connect_error"
    assert "Connect" in rows[0]["error"] or "refused" in rows[0]["error"].lower()
    assert rows[0]["sent_ns"] is None


@pytest.mark.parametrize(
    "behaviour",
    [hang(), sse([_CHUNK] * 100, pause_s=0.05), drip(b"".join(_GOOD), interval_s=0.05)],
    ids=["silent", "slow", "drip"],
)
def test_stream_request_timeout_closes_connection_at_once(
    hostile_server: Callable[..., HostileServer], behaviour: Behaviour
) -> None:
    # Closing is how the server learns to stop generating: it must happen at the timeout,
    # not when the worker's loop ends (the loop stays up 1.5 s longer here).
    server = hostile_server([behaviour])
    row = _stream_hostile(server, timeout_s=0.3, hold_s=1.5)
    assert row["status"] == "timeout"
    (conn,) = server.connections
    assert conn.client_closed_ns is not None
    assert conn.client_closed_ns - row["end_ns"] < _CLOSE_SEEN_NS


def test_stream_request_cancel_closes_connection_at_once(
    hostile_server: Callable[..., HostileServer],
) -> None:
    server = hostile_server([sse([_CHUNK] * 100, pause_s=0.05)])
    buffer = RecordBuffer("r", 0, 0, 0)

    async def body() -> None:
        task = asyncio.get_running_loop().create_task(
            _requests(server.url, 1, 10.0, _fallback, buffer)
        )
        try:
            await asyncio.sleep(0.2)
            task.cancel()
            await task
            await asyncio.sleep(1.5)
        finally:
            _drop_leftovers(server)

    uvloop.run(body())
    (row,) = buffer.take_table().to_pylist()
    assert row["status"] == "cancelled" and row["sent_ns"] is not None
    (conn,) = server.connections
    assert conn.client_closed_ns is not None
    assert conn.client_closed_ns - row["end_ns"] < _CLOSE_SEEN_NS


# -- hostile servers: limits that hold, causes named -------------------------------------


_BAD_200 = ("protocol_error", 200)


@pytest.mark.parametrize(
    ("behaviour", "outcome", "error_part"),
    [
        (endless_sse_line(), _BAD_200, "SSE event longer than 1048688 bytes"),  # 1 MiB + 16 x 7
        (endless_chunks(_CHUNK), _BAD_200, "more than 68 SSE events"),  # 2 x max_tokens 2 + 64
        (endless_chunks(b'{"choices":[{"text":""}]}'), _BAD_200, "more than 68 SSE events"),
        (endless_body(b"<html>" * 1000, 200), _BAD_200, "body longer than 65536 bytes"),
        (endless_body(b"<html>" * 1000, 502), ("http_error", 502),
         "HTTP 502 (body longer than 65536 bytes, not read further): <html><html>"),
    ],
    ids=["endless-line", "endless-content", "endless-empty", "endless-page", "endless-502"],
)  # fmt: skip
def test_stream_request_response_past_its_limits_error_row_connection_closed(
    hostile_server: Callable[..., HostileServer],
    behaviour: Behaviour,
    outcome: tuple[str, int],
    error_part: str,
) -> None:
    server = hostile_server([behaviour])
    row = _stream_hostile(server, timeout_s=30.0, hold_s=0.6)
    assert (row["status"], row["http_status"]) == outcome
    assert error_part in row["error"]
    assert row["end_ns"] - row["sent_ns"] < 10e9  # the limit ended it, not the timeout
    (conn,) = server.connections
    assert conn.client_closed_ns is not None
    assert conn.client_closed_ns - row["end_ns"] < _CLOSE_SEEN_NS


@pytest.mark.parametrize(
    ("behaviour", "status", "http_status", "error_parts"),
    [
        (gzip_sse([_CHUNK]), "protocol_error", 200, ["Content-Encoding: gzip"]),
        (json_completion(" hi"), "protocol_error", 200,
         ["Content-Type application/json, not text/event-stream", '"stream": true',
          '"text": " hi"']),
        (redirect("https://user:pw@other.example/v1/completions?key=s3cr3t", 301), "http_error",
         301, ["HTTP 301 redirect to https://other.example/v1/completions?***REDACTED***"]),
        (sse([_CHUNK, usage_chunk(7, -5)]), "protocol_error", 200,
         ["usage.completion_tokens is negative: -5"]),
        (raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"), "protocol_error",
         200, ["malformed HTTP response"]),
        (raw(b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"), "http_error",
         503, ["HTTP 503 (malformed HTTP response"]),
    ],
    ids=["gzip", "json-200", "redirect", "negative-usage", "head+bad-framing",
         "503+bad-framing"],
)  # fmt: skip
def test_stream_request_misbehaving_server_named_cause_status_kept(
    hostile_server: Callable[..., HostileServer],
    behaviour: Behaviour,
    status: str,
    http_status: int,
    error_parts: list[str],
) -> None:
    server = hostile_server([behaviour])
    row = _stream_hostile(server)
    assert (row["status"], row["http_status"]) == (status, http_status)
    for part in error_parts:
        assert part in row["error"]
    assert "[DONE]" not in row["error"]
    assert "s3cr3t" not in row["error"] and "user:pw" not in row["error"]
    assert (row["output_tokens"] or 0) >= 0  # never a negative count (negative throughput)


def test_stream_request_unknown_lengths_warmup_long_real_stream_ok(
    hostile_server: Callable[..., HostileServer],
) -> None:
    # Warm-up requests carry no lengths (0, 0): their limits must not cut a real stream.
    first = content_chunk(" a", [1]).replace(b'"index"', b'"prompt_token_ids":%b,"index"' % (
        str(list(range(100_000, 250_000))).encode()))  # fmt: skip
    server = hostile_server([sse([first] + [_CHUNK] * 999 + [usage_chunk(150_000, 1000)])])
    row = _stream_hostile(server, lengths=(0, 0))
    assert (row["status"], row["output_tokens"], row["error"]) == ("ok", 1000, None)
