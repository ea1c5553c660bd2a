"""Keep-alive HTTP/1.1 connections on asyncio Protocols, pooled per worker process.

Why Protocols: the response is parsed inside `data_received`, i.e. in the event loop's read
callback, and handed to a `ResponseHandler` with one `time.monotonic_ns()` per read. No task
wakes up per chunk; the request's coroutine sleeps on one future until the response ends.

Pool: idle connections are reused last-in first-out; a request that finds none idle opens one,
so the pool holds as many connections as requests were ever in flight at once (the worker's
`worker_max_concurrency` semaphore is the only cap). A connection goes back to the pool only
after a complete response that allows keep-alive; a request that ends any other way (timeout,
cancel, malformed response) closes its connection. A connection the server closes while idle
is dropped when its EOF arrives.

Stale keep-alive connections: servers close connections idle for a few seconds (uvicorn, hence
vLLM: 5 s), and that close can cross a new request on the wire. Two defences: the pool never
hands out a connection idle for `idle_expiry_s` or longer (it closes it instead), and a pooled
connection that ends before ANY byte of its response (EOF or reset), within
`STALE_CLOSE_WINDOW_S` of the write, reports `on_stale`, not `on_error`, so the caller may resend
the request once on a new connection. RFC 9112 §9.3.1 allows a client to retry a request
automatically, whatever its method, when its semantics are idempotent or the client can tell it
was never applied; Chromium resends on a reused socket that closed before any byte of the
response. (Go's net/http does NOT: its transport never replays a POST without an
Idempotency-Key, see `isReplayable`.) A generation request qualifies although it is a POST: it
has no side effect on the server (nothing is stored; a completion only costs compute), and the
server never answered it. A new connection that closes without a response, or a pooled one that
does so later than the window, is an error as ever: there is no resend loop.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from time import monotonic_ns
from typing import Protocol, cast
from urllib.parse import urlsplit

from steps.load.clock import sleep_until
from steps.load.http1 import ProtocolError, ResponseParser
from steps.names import check_base_url
from steps.tls import client_ssl_context

__all__ = [
    "STALE_CLOSE_WINDOW_S",
    "AbortResponse",
    "ConnectError",
    "Connection",
    "ConnectionPool",
    "ResponseHandler",
]

#: A pooled connection closed without a byte of the response counts as stale only this soon
#: after the request was written. A keep-alive close crosses our write within about a round
#: trip (the server closed before it read the request); a server that held the request longer
#: worked on it, then closed without answering: that is a protocol_error, never hidden as a
#: resend (whose lost time would show as schedule delay). 1 s is far above a round trip to a
#: serving endpoint plus a busy event loop's delay in seeing the close.
STALE_CLOSE_WINDOW_S = 1.0
_STALE_CLOSE_WINDOW_NS = round(STALE_CLOSE_WINDOW_S * 1e9)


class ConnectError(Exception):
    """The TCP connection (or TLS handshake) to the server could not be made."""


class AbortResponse(Exception):
    """A handler gives up the response (a limit hit, a body it cannot use).

    Raised from `on_head` or `on_body`: the connection is closed at once, so a server that
    would stream forever stops, and `on_error` gets the exception's text.
    """


class ResponseHandler(Protocol):
    """Receives one response, from the event loop's read callback.

    Must not raise, except AbortResponse from `on_head`/`on_body`.
    """

    def on_head(self, status: int, reason: str, headers: dict[str, str]) -> None:
        """Status line and headers (lower-case names) received."""

    def on_body(self, data: bytes, now_ns: int) -> None:
        """Body bytes of one network read, which arrived at `now_ns` (monotonic)."""

    def on_end(self) -> None:
        """The response ended completely."""

    def on_error(self, message: str) -> None:
        """The response is malformed or the connection ended before it did."""

    def on_stale(self) -> None:
        """A pooled connection ended before any byte of the response, soon after the write:
        the request may be resent once on a new connection (see the module docstring)."""


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: at most one request at a time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.handler: ResponseHandler | None = None
        self.parser = ResponseParser()
        self.closed = False
        #: Came from the pool (served a response before, or pre-opened): a close before any
        #: byte of the response is then a stale keep-alive connection, not a broken server.
        self.reused = False
        self.idle_since_ns = 0  # monotonic; set when the pool takes it back
        self.sent_ns = 0  # monotonic; when the request in flight was written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but has its methods.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: tuple[bytes, bytes], handler: ResponseHandler) -> int:
        """Write an encoded request (head, body); returns the monotonic time taken just before."""
        assert self.transport is not None
        self.handler = handler
        self.parser = ResponseParser()
        sent = self.sent_ns = monotonic_ns()
        self.transport.writelines(request)
        return sent

    def abort(self) -> None:
        """Give up the request in flight: the connection is closed, never reused."""
        self.handler = None
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        now = monotonic_ns()
        handler = self.handler
        if handler is None:  # bytes outside any request: the stream is out of sync
            self.abort()
            return
        parser = self.parser
        had_head = parser.status is not None
        error = None
        try:
            body = parser.feed(data)
        except ProtocolError as exc:
            body, error = b"", f"malformed HTTP response: {exc}"
        try:
            if not had_head and parser.status is not None:
                # Even when the same read broke the framing: the record keeps the status.
                handler.on_head(parser.status, parser.reason, parser.headers)
            if body:
                handler.on_body(body, now)
        except AbortResponse as exc:
            error = error or str(exc)
        if error is not None:
            self.abort()
            handler.on_error(error)
            return
        if parser.complete:
            self.handler = None
            if parser.keep_alive and not self.closed:
                self.pool.release(self, now)
            else:
                self.abort()
            handler.on_end()

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        handler, self.handler = self.handler, None
        if handler is None:
            return
        if self.parser.eof():
            handler.on_end()
        elif self._stale():
            handler.on_stale()
        elif exc is not None:
            handler.on_error(f"connection lost mid-response: {type(exc).__name__}: {exc}")
        elif self.parser.started:
            handler.on_error("server closed the connection before the response ended")
        else:
            handler.on_error("server closed the connection without sending a response")

    def _stale(self) -> bool:
        """Closed (EOF or reset) as a stale keep-alive connection: reused, no byte of the
        response, within STALE_CLOSE_WINDOW_S of the write."""
        return (
            self.reused
            and not self.parser.started
            and monotonic_ns() - self.sent_ns <= _STALE_CLOSE_WINDOW_NS
        )


class ConnectionPool:
    """A worker's connections to one server (`http://` or `https://` base URL); an idle
    connection is reused for less than `idle_expiry_s` (see the module docstring)."""

    def __init__(self, base_url: str, idle_expiry_s: float = 4.0) -> None:
        url = urlsplit(check_base_url(base_url))  # the one URL check (steps.names)
        assert url.hostname is not None  # checked
        self.host = url.hostname
        default_port = 443 if url.scheme == "https" else 80
        self.port = url.port or default_port
        self.host_header = url.netloc
        self.prefix = url.path.rstrip("/")
        # TLS verifies the server as every step does (steps.tls: system CAs, SSL_CERT_FILE).
        self.ssl = client_ssl_context() if url.scheme == "https" else None
        self._idle: list[Connection] = []  # oldest release first
        # uvicorn's (hence vLLM's) default keep-alive timeout is 5 s, httpx's keepalive_expiry
        # 5 s. Our idle clock starts when we processed the response's end, after the server's
        # clock did (network, a busy loop), hence less than 5 s.
        self._idle_expiry_ns = round(idle_expiry_s * 1e9)

    @property
    def idle(self) -> int:
        """Connections open and waiting for a request."""
        return len(self._idle)

    async def send(
        self,
        request: tuple[bytes, bytes],
        handler: ResponseHandler,
        new: bool = False,
        at_ns: int | None = None,
    ) -> tuple[Connection, int]:
        """Write `request` on an idle connection, or a new one (always when `new`: a resend
        after a stale close), at `at_ns` (monotonic) when given, else now; returns the
        connection and the send time (monotonic ns)."""
        conn = await self._connect() if new else await self._idle_or_new()
        if at_ns is not None:
            await sleep_until(at_ns)
            if conn.closed:  # the server closed it while we waited: nothing was written yet
                conn = await self._idle_or_new()
        return conn, conn.send(request, handler)

    async def _idle_or_new(self) -> Connection:
        """A fresh idle connection when there is one, else a new one."""
        return self._take_idle() or await self._connect()

    def _take_idle(self) -> Connection | None:
        """The most recently released open connection, unless it has expired.

        Released in time order: when the newest has been idle too long, all have; they are
        closed, so the server's idle close cannot cross our request.
        """
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                continue
            if monotonic_ns() - conn.idle_since_ns < self._idle_expiry_ns:
                return conn
            conn.abort()
            self.close()
        return None

    def has_fresh_idle(self, at_ns: int) -> bool:
        """Whether an idle connection will still be handed out (not expired) at `at_ns`
        (monotonic)."""
        expiry = self._idle_expiry_ns
        return any(not c.closed and at_ns - c.idle_since_ns < expiry for c in self._idle)

    async def open_idle(self) -> None:
        """Open one connection into the pool now (pays the first connect before t0)."""
        self.release(await self._connect(), monotonic_ns())

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            transport, conn = await loop.create_connection(
                lambda: Connection(self), self.host, self.port, ssl=self.ssl
            )
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            text = str(exc).strip()
            raise ConnectError(f"{type(exc).__name__}: {text}" if text else repr(exc)) from None
        conn.transport = transport  # uvloop calls connection_made only on a later loop turn
        return conn

    def release(self, conn: Connection, now_ns: int) -> None:
        """A connection whose response ended with keep-alive at `now_ns` (monotonic): ready
        for the next request until it expires."""
        conn.reused = True
        conn.idle_since_ns = now_ns
        self._idle.append(conn)

    def discard(self, conn: Connection) -> None:
        """A connection that closed: never hand it out again."""
        with suppress(ValueError):
            self._idle.remove(conn)

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.abort()
        self._idle.clear()
