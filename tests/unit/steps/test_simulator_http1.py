"""HTTP/1.1 framing of the simulator: request heads, response heads, chunk frames."""

from __future__ import annotations

import pytest

from steps.simulator.http1 import HttpError, encode_chunk, parse_head, response_head


def test_parse_head_http11_defaults_to_keep_alive() -> None:
    head = parse_head(
        b"POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
        b"X-Request-Id: run-0-1"
    )
    assert (head.method, head.path, head.content_length) == ("POST", "/v1/completions", 12)
    assert head.keep_alive is True
    assert head.headers["x-request-id"] == "run-0-1"


def test_parse_head_connection_close_not_kept_alive() -> None:
    assert parse_head(b"GET / HTTP/1.1\r\nConnection: close").keep_alive is False
    assert parse_head(b"GET / HTTP/1.0").keep_alive is False


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"garbage", 400),
        (b"GET / SPDY/3", 400),
        (b"GET / HTTP/1.1\r\nno-colon-here", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: x", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked", 411),
        (b"POST / HTTP/1.1\r\nContent-Length: 999999999999", 413),
    ],
)
def test_parse_head_bad_input_raises_status(raw: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse_head(raw)
    assert info.value.status == status


def test_response_head_streamed_is_chunked() -> None:
    head = response_head(200, "text/event-stream", None, True)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in head
    assert head.endswith(b"\r\n\r\n")
    assert b"content-length: 5" in response_head(404, "application/json", 5, False)


def test_encode_chunk_hex_length_frame() -> None:
    assert encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
