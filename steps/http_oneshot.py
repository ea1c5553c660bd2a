"""One-off HTTP requests to the model server outside the load hot path, with real limits.

Used by readiness (`/health`, `/v1/models`) and the load step's model lookup. Why not plain
httpx: its timeout bounds each socket read, not the request, so a server that sends one byte per
second never times out (a 1-byte/s `/health` still hung at 60 s with
`--timeout 10`), and `.content` reads the whole body into memory (an endless `/health` body
reached 3.9 GB in 22 s). Here the whole exchange (DNS, connect, TLS, head, body) runs under one
asyncio deadline that cancels it wherever it is, and the body is read in pieces and abandoned
once it passes a size cap.

The client sends `Accept-Encoding: identity` and reads the raw body, so the cap counts bytes on
the wire and a compressed body cannot expand past it. It does not follow redirects, does not use
proxy settings (the load client talks to the server directly; readiness must test that same
path) and verifies TLS with the shared context of `steps.tls`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import httpx

from steps.bounded_call import BodyTooLarge, DeadlineExceeded, LimitExceeded
from steps.tls import client_ssl_context

__all__ = [
    "MAX_BODY_BYTES",
    "BodyTooLarge",
    "DeadlineExceeded",
    "LimitExceeded",
    "OneShotClient",
    "Reply",
]

#: Largest body any of these calls accepts. The biggest legitimate one is `/v1/models` of a
#: server with many LoRA adapters: a few hundred bytes per entry, so a few hundred KB at most.
MAX_BODY_BYTES = 4 << 20


@dataclass(frozen=True)
class Reply:
    """A complete response: status and the whole (capped) body."""

    status_code: int
    content: bytes

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced: it is only ever shown, never parsed)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not."""
        return json.loads(self.content)


#: `socket.getaddrinfo`'s answer, handed through unchanged.
_AddrInfo = list[Any]


class _PrivateLoop(asyncio.SelectorEventLoop):
    """The loop of one request: host names are resolved in daemon threads.

    asyncio resolves in its default executor, whose threads the interpreter joins at exit: a
    lookup stuck in the system resolver (a silent DNS server: seconds per try, several tries and
    servers) held the process long after the deadline had given up on it. A daemon thread is
    abandoned instead, and its late answer dropped.
    """

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,  # asyncio's parameter name
        proto: int = 0,
        flags: int = 0,
    ) -> _AddrInfo:
        answer: asyncio.Future[_AddrInfo] = self.create_future()

        def settle(result: _AddrInfo, error: Exception | None) -> None:
            if answer.done():
                return  # the request gave up (deadline) before the resolver answered
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result)

        def resolve() -> None:
            result: _AddrInfo = []
            error: Exception | None = None
            try:
                result = socket.getaddrinfo(host, port, family, type, proto, flags)
            except Exception as exc:  # gaierror, UnicodeError: the request's transport error
                error = exc
            with suppress(RuntimeError):  # the loop is closed: nobody waits for it any more
                self.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=resolve, name="oneshot-getaddrinfo", daemon=True).start()
        return await answer


@dataclass(frozen=True)
class OneShotClient:
    """Requests to one server root with fixed headers; each call is bounded on its own."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    #: A caller making many calls (the load step's scraper) passes one context: building one
    #: reads the system CA store, milliseconds of CPU each time.
    ssl_context: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline_s: float,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> Reply:
        """Send one request; raise DeadlineExceeded / BodyTooLarge, or httpx.RequestError for
        transport failures (refused, DNS, TLS), whose text the callers report."""
        # A private loop whose DNS lookups run in daemon threads: one stuck in the resolver must
        # hold neither the caller past the deadline (asyncio.run would wait for its executor)
        # nor the process at exit (the interpreter joins executor threads).
        loop = _PrivateLoop()
        try:
            return loop.run_until_complete(self._request(method, path, deadline_s, max_body_bytes))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _request(
        self, method: str, path: str, deadline_s: float, max_body_bytes: int
    ) -> Reply:
        url = self.base_url.rstrip("/") + path
        headers = {"Accept-Encoding": "identity", **self.headers}
        body = bytearray()
        try:
            async with (
                asyncio.timeout(deadline_s),
                httpx.AsyncClient(
                    verify=self.ssl_context or client_ssl_context(), trust_env=False, timeout=None
                ) as c,
                c.stream(method, url, headers=headers) as response,
            ):
                async for piece in response.aiter_raw():
                    body += piece
                    if len(body) > max_body_bytes:
                        raise BodyTooLarge(
                            f"HTTP {response.status_code} body larger than {max_body_bytes:,} "
                            "bytes; stopped reading"
                        )
                return Reply(response.status_code, bytes(body))
        except TimeoutError:
            got = f" ({len(body):,} body bytes by then)" if body else ""
            raise DeadlineExceeded(f"no complete answer within {deadline_s:g} s{got}") from None
