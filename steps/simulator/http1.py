"""The slice of HTTP/1.1 the simulator needs: request heads in, response heads and chunks out.

Hand-rolled because a framework's per-request and per-chunk overhead would be billed to the very
measurements the simulator exists to make (the budget is well under 2 ms CPU per 128-chunk
stream). Keep-alive by default, `Content-Length` request bodies only (what HTTP clients send
for JSON), `Transfer-Encoding: chunked` responses for streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

__all__ = [
    "JSON_TYPE",
    "LAST_CHUNK",
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "HttpError",
    "RequestHead",
    "encode_chunk",
    "parse_head",
    "response_head",
]

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
LAST_CHUNK = b"0\r\n\r\n"
JSON_TYPE = "application/json"


class HttpError(Exception):
    """A request the server answers with `status` and closes the connection after."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request line and headers (names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool
    content_length: int


def parse_head(raw: bytes) -> RequestHead:
    """Parse a request head (without the blank line); raises HttpError(400/411/413)."""
    try:
        text = raw.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError as exc:
        raise HttpError(400, "malformed request line") from exc
    if not version.startswith("HTTP/1."):
        raise HttpError(400, f"unsupported protocol {version!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, f"malformed header line {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError(411, "chunked request bodies are not supported; send Content-Length")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise HttpError(400, "bad Content-Length") from exc
    if length < 0 or length > MAX_BODY_BYTES:
        raise HttpError(413, f"body of {length} bytes exceeds {MAX_BODY_BYTES}")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return RequestHead(method, target.split("?", 1)[0], headers, keep_alive, length)


def response_head(
    status: int,
    content_type: str,
    content_length: int | None,
    keep_alive: bool,
) -> bytes:
    """A response head; `content_length=None` means a chunked (streamed) body."""
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"content-type: {content_type}",
        "transfer-encoding: chunked"
        if content_length is None
        else f"content-length: {content_length}",
        "connection: keep-alive" if keep_alive else "connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_chunk(payload: bytes) -> bytes:
    """One `Transfer-Encoding: chunked` frame around `payload` (never empty: that ends the body)."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)
