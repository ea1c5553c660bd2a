"""A scripted HTTP/1.1 peer for the load client's unit tests (not a simulator stand-in).

The real simulator covers the normal path in tests/integration; these tests need exact wire
conditions it cannot produce on demand (a cut at a given byte, a malformed status line, a
response split across reads in a chosen place). Each accepted request is answered with the next
script entry: a list of byte strings written with a pause between them, then `close` or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import uvloop

__all__ = ["Reply", "ScriptedServer", "run_with_server"]

T = TypeVar("T")


@dataclass
class Reply:
    """What the server writes for one request."""

    pieces: list[bytes]
    close: bool = False
    pause_s: float = 0.005


@dataclass
class ScriptedServer:
    """Answers requests in order with `replies`; records what it saw."""

    replies: list[Reply]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    url: str = ""
    tasks: list[asyncio.Task[object]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self.tasks.append(task)
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                for i, piece in enumerate(reply.pieces):
                    if i:
                        await asyncio.sleep(reply.pause_s)
                    writer.write(piece)
                    await writer.drain()
                if reply.close:
                    return
            await reader.read()  # until the client closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run_with_server(
    replies: list[Reply], body: Callable[[ScriptedServer], Awaitable[T]]
) -> tuple[T, ScriptedServer]:
    """Start the server on a free port, run `body(server)` on uvloop, stop the server."""
    server = ScriptedServer(replies)

    async def main() -> T:
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
        try:
            return await body(server)
        finally:
            srv.close()
            for task in server.tasks:
                task.cancel()
            await asyncio.gather(*server.tasks, return_exceptions=True)
            await srv.wait_closed()

    return uvloop.run(main()), server
