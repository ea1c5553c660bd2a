"""HTTP/1.1 on the wire for the load step: request heads out, an incremental response parser in.

Why not httpx here: measured on the 2-core target, httpx's streaming path (anyio stream reads,
h11 parsing, httpcore's pool walk, one coroutine hop per read) cost ~11.5 ms CPU per 128-chunk
request on its own, more than twice the 5 ms budget of the whole client. This parser does one
pass per network read in plain bytes operations and hands back that read's body bytes, so the
caller can timestamp and split them inside `data_received` without any coroutine switch.

Scope: what an OpenAI-compatible server answers to a POST/GET: a status line, headers, then a
`Transfer-Encoding: chunked`, `Content-Length` or close-delimited body (1xx interim responses are
skipped, 204/304 have no body). Chunk extensions and trailers are accepted and ignored. Content
codings are not decoded: requests say `Accept-Encoding: identity`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["ProtocolError", "ResponseParser", "encode_request"]

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_MAX_HEAD = 64 * 1024
_MAX_LINE = 4096
# Body framing states (the chunked ones are a contiguous range).
_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


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
        "_buf",
        "_remaining",
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
        self._buf = b""
        self._remaining = 0
        # Any byte fed: `status` and `_buf` cannot tell once a complete 1xx head was skipped.
        self._started = False

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
        if self._buf:
            data = self._buf + data
            self._buf = b""
        state = self._state
        if state == _HEAD:
            data = self._head(data)
            state = self._state
        if _SIZE <= state <= _TRAILER:  # chunked framing
            return self._chunked(data)
        if state == _LENGTH:
            if len(data) >= self._remaining:
                body, rest = data[: self._remaining], data[self._remaining :]
                self._remaining = 0
                self._state = _DONE
                if rest.strip():
                    raise ProtocolError("bytes after the end of a Content-Length body")
                return body
            self._remaining -= len(data)
            return data
        if state == _UNTIL_CLOSE:
            return data
        if state == _DONE and data.strip():
            raise ProtocolError("bytes after the end of the response")
        return b""

    def eof(self) -> bool:
        """The connection closed: True when that completes the response (close-delimited)."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
        return self._state == _DONE

    # -- head -----------------------------------------------------------------------------
    def _head(self, data: bytes) -> bytes:
        """Parse a complete head (skipping 1xx); return what follows it, buffer a partial one.

        Every byte passes here before the head is complete, so this is where `started` is set
        (body reads never come here: no cost per body read)."""
        if data:
            self._started = True
        while True:
            match = _HEAD_END.search(data)
            if match is None:
                if len(data) > _MAX_HEAD:
                    raise ProtocolError(f"response head longer than {_MAX_HEAD} bytes")
                self._buf = data
                return b""
            head, data = data[: match.start()], data[match.end() :]
            lines = head.decode("latin-1").splitlines()
            status = self._status_line(lines[0] if lines else "")
            if 100 <= status < 200 and status != 101:
                continue  # interim response (100 Continue, 103 Early Hints): the real one follows
            break
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"malformed response header line: {line[:80]!r}")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.status = status
        self.headers = headers
        version = lines[0][:8]
        connection = headers.get("connection", "").lower()
        self.keep_alive = (
            "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        )
        self._start_body(status, headers)
        return data

    def _status_line(self, line: str) -> int:
        parts = line.split(" ", 2)
        if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
        self.reason = parts[2] if len(parts) > 2 else ""
        return int(parts[1])

    def _start_body(self, status: int, headers: dict[str, str]) -> None:
        if status in (204, 304) or 100 <= status < 200:
            self._state = _DONE
            return
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.lower().rsplit(",", 1)[-1].strip() != "chunked":
                raise ProtocolError(f"unsupported Transfer-Encoding: {coding!r}")
            self._state = _SIZE
            return
        length = headers.get("content-length")
        if length is not None:
            values = {v.strip() for v in length.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise ProtocolError(f"invalid Content-Length: {length!r}")
            self._remaining = int(values.pop())
            self._state = _LENGTH if self._remaining else _DONE
            return
        self._state = _UNTIL_CLOSE
        self.keep_alive = False

    # -- chunked --------------------------------------------------------------------------
    def _chunked(self, data: bytes) -> bytes:
        """Decode chunked framing; returns the chunk data this read carried."""
        out: list[bytes] = []
        pos, n = 0, len(data)
        state, remaining = self._state, self._remaining
        while pos < n:
            if state == _DATA:
                end = pos + remaining
                if end > n:
                    out.append(data[pos:])
                    remaining -= n - pos
                    pos = n
                    break
                out.append(data[pos:end])
                pos, remaining, state = end, 0, _DATA_END
            elif state == _SIZE:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    break
                line = data[pos:eol].split(b";", 1)[0].strip()
                try:
                    remaining = int(line, 16) if line.isalnum() else -1
                except ValueError:
                    remaining = -1
                if remaining < 0:
                    raise ProtocolError(f"invalid chunk size line: {line[:40]!r}")
                pos = eol + 1
                state = _DATA if remaining else _TRAILER
            elif state == _DATA_END:
                if data[pos] == 0x0A:
                    pos += 1
                    state = _SIZE
                elif data[pos] == 0x0D:
                    if pos + 1 == n:
                        break  # CR now, LF in the next read
                    if data[pos + 1] != 0x0A:
                        raise ProtocolError("chunk data not followed by CRLF")
                    pos += 2
                    state = _SIZE
                else:
                    raise ProtocolError("chunk data longer than its declared size")
            else:  # _TRAILER: header lines until an empty one
                eol = data.find(b"\n", pos)
                if eol < 0:
                    break
                line = data[pos:eol].strip()
                pos = eol + 1
                if not line:
                    state = _DONE
                    if data[pos:].strip():
                        raise ProtocolError("bytes after the end of a chunked body")
                    pos = n
        if pos < n:
            if n - pos > _MAX_LINE:
                raise ProtocolError(f"chunk size or trailer line longer than {_MAX_LINE} bytes")
            self._buf = data[pos:]
        self._state, self._remaining = state, remaining
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)
