"""steps.load.connection: keep-alive reuse, growth under concurrency, what is never reused."""

from __future__ import annotations

import asyncio

import pytest

from steps.load.connection import ConnectionPool
from steps.load.http1 import encode_request
from tests.unit.steps.load_wire import Reply, ScriptedServer, run_with_server

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
_CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"


class _Collect:
    """A ResponseHandler that keeps the body and resolves a future at the end."""

    def __init__(self) -> None:
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.body = b""

    def on_head(self, status: int, reason: str, headers: dict[str, str]) -> None:
        pass

    def on_body(self, data: bytes, now_ns: int) -> None:
        self.body += data

    def on_end(self) -> None:
        self.done.set_result("end")

    def on_error(self, message: str) -> None:
        self.done.set_result(message)


async def _request(pool: ConnectionPool) -> str:
    handler = _Collect()
    await pool.send(encode_request("GET", "/", pool.host_header, {}), handler)
    return await handler.done


def test_pool_sequential_requests_reuse_one_connection() -> None:
    async def body(server: ScriptedServer) -> list[str]:
        pool = ConnectionPool(server.url)
        results = [await _request(pool) for _ in range(3)]
        assert pool.idle == 1
        pool.close()
        return results

    results, server = run_with_server([Reply([_OK])] * 3, body)
    assert results == ["end"] * 3
    assert server.connections == 1
    assert all(r.startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:") for r in server.requests)


def test_pool_concurrent_requests_open_one_connection_each_then_reuse() -> None:
    async def body(server: ScriptedServer) -> int:
        pool = ConnectionPool(server.url)
        await asyncio.gather(*(_request(pool) for _ in range(4)))
        idle = pool.idle
        await asyncio.gather(*(_request(pool) for _ in range(4)))
        pool.close()
        return idle

    idle, server = run_with_server([Reply([_OK], pause_s=0.05)] * 8, body)
    assert idle == 4
    assert server.connections == 4


@pytest.mark.parametrize("reply", [Reply([_CLOSE]), Reply([_OK], close=True)])
def test_pool_closed_connection_not_reused(reply: Reply) -> None:
    async def body(server: ScriptedServer) -> list[str]:
        pool = ConnectionPool(server.url)
        first = await _request(pool)
        await asyncio.sleep(0.05)  # the server's close (if any) arrives while idle
        second = await _request(pool)
        pool.close()
        return [first, second]

    results, server = run_with_server([reply, Reply([_OK])], body)
    assert results == ["end", "end"]
    assert server.connections == 2


def test_pool_base_url_prefix_and_default_port() -> None:
    pool = ConnectionPool("https://gw.example/api/")
    assert (pool.host, pool.port, pool.prefix, pool.host_header) == (
        "gw.example",
        443,
        "/api",
        "gw.example",
    )
    assert pool.ssl is not None


@pytest.mark.parametrize("url", ["ftp://h", "http://h:port", "http://"])
def test_pool_bad_base_url_value_error(url: str) -> None:
    with pytest.raises(ValueError):
        ConnectionPool(url)
