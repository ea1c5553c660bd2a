"""steps.load.http1: request encoding and the incremental response parser.

Property: any split of a response's bytes into reads gives the same status, the same body and,
fed through the SSE splitter read by read (as the client does), the same events.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steps.load.http1 import ProtocolError, ResponseParser, encode_request
from steps.load.sse import SseSplitter

_PAYLOAD = st.binary(min_size=1, max_size=60).filter(
    lambda b: b"\n" not in b and b"\r" not in b and not b.startswith(b" ")
)


def _sse(payloads: list[bytes]) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads) + b"data: [DONE]\n\n"


def _chunked(body: bytes, sizes: list[int], ext: bool, trailer: bool) -> bytes:
    """`body` in chunks of the given sizes (cycled), as Transfer-Encoding: chunked."""
    out, pos, i = b"", 0, 0
    while pos < len(body):
        size = sizes[i % len(sizes)] if sizes else len(body)
        piece = body[pos : pos + size]
        out += b"%x%s\r\n%s\r\n" % (len(piece), b";x=y" if ext else b"", piece)
        pos += size
        i += 1
    return out + b"0\r\n" + (b"X-Trailer: 1\r\n" if trailer else b"") + b"\r\n"


def _head(framing: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-type: text/event-stream\r\n" + framing + b"\r\n"


def _feed(wire: bytes, cuts: list[int]) -> tuple[ResponseParser, bytes, list[bytes], int]:
    """Feed `wire` split at `cuts`; returns the parser, the body, the SSE events, #reads done."""
    parser = ResponseParser()
    splitter = SseSplitter()
    body, events, prev, reads = b"", [], 0, 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        piece = parser.feed(wire[prev:cut])
        reads += 1
        body += piece
        events.extend(splitter.feed(piece))
        prev = cut
    return parser, body, events, reads


@given(
    payloads=st.lists(_PAYLOAD, max_size=10),
    sizes=st.lists(st.integers(1, 80), max_size=4),
    ext=st.booleans(),
    trailer=st.booleans(),
    data=st.data(),
)
def test_parser_chunked_sse_any_split_same_body_and_events(
    payloads: list[bytes], sizes: list[int], ext: bool, trailer: bool, data: st.DataObject
) -> None:
    body = _sse(payloads)
    wire = _head(b"transfer-encoding: chunked\r\n") + _chunked(body, sizes, ext, trailer)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12))
    parser, got, events, _ = _feed(wire, cuts)
    assert parser.complete
    assert (parser.status, parser.keep_alive) == (200, True)
    assert got == body
    assert events == [*payloads, b"[DONE]"]


@given(payloads=st.lists(_PAYLOAD, max_size=6), data=st.data())
def test_parser_content_length_any_split_same_body(
    payloads: list[bytes], data: st.DataObject
) -> None:
    body = _sse(payloads)
    wire = _head(b"content-length: %d\r\n" % len(body))
    wire += body
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=8))
    parser, got, events, _ = _feed(wire, cuts)
    assert parser.complete and got == body and events == [*payloads, b"[DONE]"]


@given(payloads=st.lists(_PAYLOAD, max_size=6), data=st.data())
def test_parser_close_delimited_complete_only_at_eof(
    payloads: list[bytes], data: st.DataObject
) -> None:
    body = _sse(payloads)
    wire = _head(b"") + body
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=8))
    parser, got, _, _ = _feed(wire, cuts)
    assert not parser.complete and not parser.keep_alive
    assert parser.eof() and parser.complete
    assert got == body


def test_parser_interim_100_continue_skipped() -> None:
    parser = ResponseParser()
    body = parser.feed(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    )
    assert (parser.status, body, parser.complete) == (200, b"hi", True)


@pytest.mark.parametrize(
    "reads",
    [[b"H"], [b"HTTP/1.1 200 OK\r\n"], [b"HTTP/1.1 100 Continue\r\n\r\n"],
     [b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n", b"\r\n"]],
    ids=["one-byte", "part-of-head", "interim-100", "interim-103-in-two-reads"],
)  # fmt: skip
def test_parser_started_by_any_byte_even_a_skipped_interim_head(reads: list[bytes]) -> None:
    parser = ResponseParser()
    assert not parser.started
    for data in reads:
        parser.feed(data)
    assert parser.started and parser.status is None


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 0\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    ],
)
def test_parser_keep_alive_rules(head: bytes, keep_alive: bool) -> None:
    parser = ResponseParser()
    parser.feed(head)
    assert parser.complete and parser.keep_alive is keep_alive


def test_parser_error_status_and_body() -> None:
    parser = ResponseParser()
    body = parser.feed(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b'content-length: 15\r\n\r\n{"error":"busy"}'[:-1]
    )
    assert (parser.status, parser.reason, body) == (503, "Service Unavailable", b'{"error":"busy"')


@pytest.mark.parametrize(
    "wire",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nab",
    ],
)
def test_parser_malformed_raises_protocol_error(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(wire)


def test_parser_truncated_chunked_body_incomplete_at_eof() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab")
    assert parser.started and not parser.eof()


def test_encode_request_head_and_body() -> None:
    body = b"{}"
    head, same = encode_request(
        "POST", "/v1/completions", "h:8000", {"X-Request-Id": "r-0-1"}, body
    )
    assert same is body
    assert head + body == (
        b"POST /v1/completions HTTP/1.1\r\nHost: h:8000\r\nX-Request-Id: r-0-1\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )


@pytest.mark.parametrize(
    "headers", [{"X-A": "v\r\nInjected: 1"}, {"X\nB": "v"}, {"": "v"}, {"X-A": "\u2603"}]
)
def test_encode_request_bad_header_raises_value_error(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        encode_request("POST", "/", "h", headers)
