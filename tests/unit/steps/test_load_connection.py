"""steps.load.connection: keep-alive reuse, growth under concurrency, what is never reused."""

from __future__ import annotations

import asyncio
import time

import pytest

from steps.load.connection import ConnectionPool
from steps.load.http1 import encode_request
from tests.fakes.hostile import Behaviour, HostileServer, raw, run_with_server

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
_CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
_KEEP_OK = raw(_OK, keep_alive=True)


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

    def on_stale(self) -> None:
        self.done.set_result("stale")


async def _request(pool: ConnectionPool, new: bool = False) -> str:
    handler = _Collect()
    await pool.send(encode_request("GET", "/", pool.host_header, {}), handler, new=new)
    return await handler.done


def test_pool_sequential_requests_reuse_one_connection() -> None:
    async def body(server: HostileServer) -> list[str]:
        pool = ConnectionPool(server.url)
        results = [await _request(pool) for _ in range(3)]
        assert pool.idle == 1
        pool.close()
        return results

    results, server = run_with_server([_KEEP_OK], body)
    assert results == ["end"] * 3
    assert len(server.connections) == 1
    assert len(server.requests) == 3
    assert all((r.method, r.target) == ("GET", "/") for r in server.requests)
    assert all(r.headers["host"] == server.url.removeprefix("http://") for r in server.requests)


def test_pool_concurrent_requests_open_one_connection_each_then_reuse() -> None:
    async def body(server: HostileServer) -> int:
        pool = ConnectionPool(server.url)
        await asyncio.gather(*(_request(pool) for _ in range(4)))
        idle = pool.idle
        await asyncio.gather(*(_request(pool) for _ in range(4)))
        pool.close()
        return idle

    slow_ok = raw(_OK[:20], _OK[20:], pause_s=0.05, keep_alive=True)
    idle, server = run_with_server([slow_ok], body)
    assert idle == 4
    assert len(server.connections) == 4


@pytest.mark.parametrize(
    "reply", [raw(_CLOSE, keep_alive=True), raw(_OK)], ids=["connection-close", "server-closes"]
)
def test_pool_closed_connection_not_reused(reply: Behaviour) -> None:
    async def body(server: HostileServer) -> list[str]:
        pool = ConnectionPool(server.url)
        first = await _request(pool)
        await asyncio.sleep(0.05)  # the server's close (if any) arrives while idle
        second = await _request(pool)
        pool.close()
        return [first, second]

    results, server = run_with_server([reply, _KEEP_OK], body)
    assert results == ["end", "end"]
    assert len(server.connections) == 2


def test_pool_idle_past_expiry_closed_not_reused() -> None:
    async def body(server: HostileServer) -> tuple[list[str], int]:
        pool = ConnectionPool(server.url, idle_expiry_s=0.1)
        results = [await _request(pool)]
        await asyncio.sleep(0.2)
        results.append(await _request(pool))
        await asyncio.sleep(0.1)  # our close reaches the server
        before_pool_close = time.monotonic_ns()
        pool.close()
        return results, before_pool_close

    (results, before_pool_close), server = run_with_server([_KEEP_OK], body)
    assert results == ["end", "end"]
    assert [len(c.requests) for c in server.connections] == [1, 1]
    expired = server.connections[0]
    # Closed by us when it was passed over, not left open until the pool or loop closed.
    assert expired.server_closed_ns is None and expired.client_closed_ns is not None
    assert expired.client_closed_ns < before_pool_close


def test_pool_fresh_idle_until_expiry_open_idle_restores_it_and_serves_next() -> None:
    # What a worker checks before a stage: an idle connection that will be fresh at the start.
    async def body(server: HostileServer) -> tuple[list[bool], str]:
        pool = ConnectionPool(server.url, idle_expiry_s=0.2)
        fresh = [pool.has_fresh_idle(time.monotonic_ns())]
        await pool.open_idle()
        now = time.monotonic_ns()
        fresh += [pool.has_fresh_idle(now), pool.has_fresh_idle(now + 300_000_000)]
        await asyncio.sleep(0.25)
        fresh.append(pool.has_fresh_idle(time.monotonic_ns()))
        await pool.open_idle()
        fresh.append(pool.has_fresh_idle(time.monotonic_ns()))
        result = await _request(pool)
        pool.close()
        return fresh, result

    (fresh, result), server = run_with_server([_KEEP_OK], body)
    assert fresh == [False, True, False, False, True]
    assert result == "end"
    assert [len(c.requests) for c in server.connections] == [0, 1]  # the re-opened one served


@pytest.mark.parametrize("pre_open", [False, True], ids=["served-before", "pre-opened"])
def test_pool_pooled_connection_closed_before_any_byte_is_stale_new_one_is_error(
    pre_open: bool,
) -> None:
    async def body(server: HostileServer) -> list[str]:
        pool = ConnectionPool(server.url)
        if pre_open:
            await pool.open_idle()
        else:
            assert await _request(pool) == "end"
        results = [await _request(pool), await _request(pool, new=True)]
        pool.close()
        return results

    close_silently = raw()
    script = [close_silently] if pre_open else [_KEEP_OK, close_silently]
    results, server = run_with_server(script, body)
    assert results == ["stale", "server closed the connection without sending a response"]
    assert len(server.connections) == 2


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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8000/v1?key=SECRET-7", "query string"),
        ("http://u:SECRET-7@h:8000", "credentials"),
        ("http://h:8000/a b", "spaces"),
        ("http://h:0", "port"),
    ],
)
def test_pool_base_url_is_the_one_check(url: str, expected: str) -> None:
    """The pool applies steps.names.check_base_url: nothing the other steps refuse gets through,
    and the refusal never quotes the URL (it may hold a secret)."""
    with pytest.raises(ValueError, match=expected) as err:
        ConnectionPool(url)
    assert "SECRET" not in str(err.value)


async def _request_at(pool: ConnectionPool, at_ns: int) -> tuple[str, int]:
    """A request written at `at_ns` (monotonic): its end and its send time."""
    handler = _Collect()
    request = encode_request("GET", "/", pool.host_header, {})
    _, sent = await pool.send(request, handler, at_ns=at_ns)
    return await asyncio.wait_for(handler.done, 2.0), sent


def test_pool_send_at_takes_the_connection_then_writes_at_that_time() -> None:
    async def body(server: HostileServer) -> tuple[str, int, int]:
        pool = ConnectionPool(server.url)
        await _request(pool)
        at_ns = time.monotonic_ns() + 30_000_000
        result, sent = await _request_at(pool, at_ns)
        pool.close()
        return result, sent, at_ns

    (result, sent, at_ns), server = run_with_server([_KEEP_OK], body)
    assert result == "end"
    assert at_ns <= sent < at_ns + 20_000_000  # never early
    assert len(server.connections) == 1


def test_pool_send_at_connection_closed_while_waiting_is_not_written_on() -> None:
    async def body(server: HostileServer) -> str:
        pool = ConnectionPool(server.url)
        await _request(pool)  # the server closes this connection 50 ms after its answer
        result, _ = await _request_at(pool, time.monotonic_ns() + 150_000_000)
        pool.close()
        return result

    closes_later = raw(_OK, b"", pause_s=0.05)
    result, server = run_with_server([closes_later, _KEEP_OK], body)
    assert result == "end"
    assert len(server.connections) == 2
