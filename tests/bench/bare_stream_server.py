"""The floor for `simulator_cpu`: the same streams with nothing but the unavoidable work.

    python -m tests.bench.bare_stream_server --port 0 [--ttft-ms 50] [--itl-ms 10]

Why it exists: on a small VM most of a streaming server's CPU is not its own logic but the
kernel's loopback TCP send (~5 us per write with hot caches, ~9 us in a 10 ms step pattern) and
the cost of every wakeup from idle (~75-120 us measured for an empty timer callback). A CPU
figure for the simulator alone cannot say how much of it the simulator could still save. This
server does exactly the simulator's I/O, with the fewest Python operations possible: it reads a
request up to its Content-Length body without parsing it, answers with a chunked SSE head, and
writes one pre-built chunk of the simulator's size per stream per step on an absolute 10 ms grid
(first chunk after `--ttft-ms`), then a usage event and `[DONE]`, as `simulator_cpu` expects.
No truth, no metrics, no validation: not a server to test against, only a baseline to divide by.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

import uvloop

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_EVENT = (
    b'data: {"id":"cmpl-00000000000000000000000000000000","object":"text_completion",'
    b'"created":1700000000,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"text":" token",'
    b'"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
)
_USAGE = (
    b'data: {"id":"cmpl-00000000000000000000000000000000","object":"text_completion",'
    b'"created":1700000000,"model":"Qwen/Qwen3-8B","choices":[],"usage":{"prompt_tokens":512,'
    b'"total_tokens":640,"completion_tokens":128}}\n\ndata: [DONE]\n\n'
)
_CHUNK = b"%x\r\n%b\r\n" % (len(_EVENT), _EVENT)
_LAST = b"%x\r\n%b\r\n0\r\n\r\n" % (len(_EVENT + _USAGE), _EVENT + _USAGE)
_TOKENS = 128


class _Stream:
    __slots__ = ("first_at", "left", "write")

    def __init__(self, write: object, first_at: float) -> None:
        self.write = write
        self.first_at = first_at
        self.left = _TOKENS


class _Server:
    """Streams waiting for their first token, streams decoding, and the one step timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ttft_s: float, itl_s: float) -> None:
        self.loop = loop
        self.ttft_s = ttft_s
        self.itl_s = itl_s
        self.streams: list[_Stream] = []
        self.timer: asyncio.TimerHandle | None = None
        self.anchor = 0.0
        self.step = 0

    def add(self, stream: _Stream) -> None:
        self.streams.append(stream)
        if self.timer is None:
            self.anchor, self.step = stream.first_at, 0
            self.timer = self.loop.call_at(stream.first_at, self.run_step)

    def run_step(self) -> None:
        now = time.monotonic()
        for stream in self.streams:
            if stream.first_at <= now:
                stream.left -= 1
                stream.write(_CHUNK if stream.left else _LAST)  # type: ignore[operator]
        self.streams = [s for s in self.streams if s.left]
        if not self.streams:
            self.timer = None
            return
        self.step += 1
        due = max(self.anchor + self.step * self.itl_s, min(s.first_at for s in self.streams))
        self.timer = self.loop.call_at(due, self.run_step)


class _Connection(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport type

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = int(self.buffer.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        assert self.transport is not None
        self.transport.write(_HEAD)
        first_at = time.monotonic() + self.server.ttft_s
        self.server.add(_Stream(self.transport.write, first_at))


async def _serve(host: str, port: int, ttft_s: float, itl_s: float) -> None:
    loop = asyncio.get_running_loop()
    server = _Server(loop, ttft_s, itl_s)
    listener = await loop.create_server(lambda: _Connection(server), host, port, backlog=2048)
    print(f"listening on http://{host}:{listener.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.host, args.port, args.ttft_ms / 1e3, args.itl_ms / 1e3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
