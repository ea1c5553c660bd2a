"""HTTP/1.1 on the wire for the load step: request heads out, an incremental response parser in.

Why not httpx here: measured on the 2-core target, httpx's streaming path (anyio stream reads,
h11 parsing, httpcore's pool walk, one coroutine hop per read) cost ~11.5 ms CPU per 128-chunk
request on its own, more than twice the 5 ms budget of the whole client. The response parser is
`httptools` (llhttp, Node's C parser; the one behind uvicorn), fed once per network read; it
hands back that read's body bytes, so the caller can timestamp and split them inside
`data_received` without any coroutine switch. It replaced a hand-written Python parser because
it is faster on this very path: one 128-chunk SSE response fed read by read cost 39 µs CPU with
httptools against 110 µs (tests/bench/http1_parser.py), and llhttp is hardened by Node's use.

Scope: what an OpenAI-compatible server answers to a POST/GET: a status line, headers, then a
`Transfer-Encoding: chunked`, `Content-Length` or close-delimited body (1xx interim responses are
skipped, 204/304 have no body). Chunk extensions and trailers are accepted and ignored. Content
codings are not decoded: requests say `Accept-Encoding: identity`. Limits on top of llhttp's own
checks: a head over 64 KiB, a Transfer-Encoding whose last coding is not chunked, and any byte
after the end of the response are protocol errors.
"""

from __future__ import annotations

from collections.abc import Mapping

import httptools

__all__ = ["ProtocolError", "ResponseParser", "encode_request"]

_MAX_HEAD = 64 * 1024
# Where a response is: its head (status line, headers), a framed body, a body that only the
# connection's close ends, or done.
_HEAD, _BODY, _UNTIL_CLOSE, _DONE = range(4)


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.1 response (or it ended one too early)."""


def encode_request(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes = b""
) -> tuple[bytes, bytes]:
    """The complete request as (head, body), written with one `writelines`.

    The body is returned as is, not copied into one buffer with the head: a worker holds every
    request of its share encoded before t0, and prompts are most of those bytes.

    Header names and values with CR/LF are refused (they would split the request); values are
    latin-1 as HTTP/1.1 allows, anything else raises ValueError naming the header.
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"header {name!r} has a forbidden character (CR, LF, NUL or ':')")
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise ValueError(f"a request header is not latin-1: {bad!r}") from None
    return head, body


class ResponseParser:
    """Feed the bytes of one response as they arrive; get its body bytes back per read.

    `feed(data)` returns the body bytes that `data` carried (b"" when none: head only, framing
    only, or a partial chunk-size line); `status` (and `reason`, `headers`) is set once the head
    is complete and `complete` once the body ended. `eof()` tells whether the connection closing
    now ends the response properly (only for a close-delimited body). Malformed input raises
    ProtocolError.
    One parser per response: a keep-alive connection makes a new one per request.
    """

    __slots__ = (
        "_body",
        "_error",
        "_head",
        "_parser",
        "_reason",
        "_started",
        "_state",
        "headers",
        "keep_alive",
        "reason",
        "status",
    )

    def __init__(self) -> None:
        self.status: int | None = None
        self.reason = ""
        self.headers: dict[str, str] = {}  # lower-case names; repeated headers joined by ", "
        self.keep_alive = False
        self._state = _HEAD
        self._body: list[bytes] = []
        self._head = b""  # the bytes fed while the head was incomplete: quoted in errors
        self._reason = b""
        self._error: str | None = None
        # Any byte fed: `status` cannot tell once a complete 1xx head was skipped.
        self._started = False
        self._parser = httptools.HttpResponseParser(self)

    @property
    def complete(self) -> bool:
        """Whether the whole response (head and body) has been received."""
        return self._state == _DONE

    @property
    def started(self) -> bool:
        """Whether any byte of the response has been fed (an interim 1xx head counts: the
        server answered the request, so a close after it is no stale keep-alive close)."""
        return self._started

    def feed(self, data: bytes) -> bytes:
        """Consume one read; return the body bytes it carried."""
        if not data:
            return b""
        self._started = True
        if self._state == _HEAD:
            self._head += data[: _MAX_HEAD + 1 - len(self._head)]
        elif self._state == _DONE:
            if data.strip():
                raise ProtocolError("bytes after the end of the response")
            return b""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._error is not None:
                raise ProtocolError(self._error) from None
            line = self._head.split(b"\n", 1)[0][:80] if self.status is None else b""
            where = f" in {line!r}" if line else ""
            raise ProtocolError(f"malformed response ({exc}){where}") from None
        if self._state == _HEAD and len(self._head) > _MAX_HEAD:
            raise ProtocolError(f"response head longer than {_MAX_HEAD} bytes")
        body = self._body
        if not body:
            return b""
        self._body = []
        return body[0] if len(body) == 1 else b"".join(body)

    def eof(self) -> bool:
        """The connection closed: True when that completes the response (close-delimited)."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
        return self._state == _DONE

    # -- httptools callbacks (called from inside feed_data) ---------------------------------
    def _fail(self, message: str) -> None:
        """Remember why, then stop llhttp (an exception here ends feed_data with an error)."""
        self._error = message
        raise ProtocolError(message)

    def on_message_begin(self) -> None:
        if self._state != _HEAD:
            self._fail("bytes after the end of the response")

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip()
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # interim response (100 Continue, 103 Early Hints): the real one follows
            self.headers, self._reason = {}, b""
            return
        self.status = status
        self.reason = self._reason.decode("latin-1")
        self.keep_alive = self._parser.should_keep_alive()
        headers = self.headers
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.lower().rsplit(",", 1)[-1].strip() != "chunked":
            self._fail(f"unsupported Transfer-Encoding: {coding!r}")
        if coding is None and "content-length" not in headers and status not in (204, 304):
            self._state = _UNTIL_CLOSE
            self.keep_alive = False
        else:
            self._state = _BODY

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.status is not None:  # the end of an interim head leaves the real one to come
            self._state = _DONE
