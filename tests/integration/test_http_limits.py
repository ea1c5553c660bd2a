"""Limits of every HTTP call outside the load hot path, against the hostile server fixture.

readiness (`/health`, `/v1/models`) and the load step's model lookup must end at
their wall-clock deadline however slowly a server drips bytes, and must stop reading a body
past the size cap however much a server sends. The CLI cases run the real step in a child
process whose address space is capped, so a body read whole into memory fails the test instead
of swapping the machine, and its wall time is measured from outside.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from steps.errors import BenchError, UsageError
from steps.http_oneshot import MAX_BODY_BYTES, OneShotClient
from steps.load.config import Config, config_from_dict
from steps.load.model_lookup import resolve_model
from steps.readiness.probe import check_once, wait_ready
from tests.fakes.hostile import (
    Behaviour,
    HostileServer,
    SeenRequest,
    drip,
    endless_body,
    hang,
    respond,
)

StartHostile = Callable[..., HostileServer]
REPO = Path(__file__).resolve().parents[2]
#: The child's address-space cap: Python with httpx needs a few hundred MB; a body read whole
#: (3.9 GB in 22 s before the fix) cannot fit.
_CHILD_MEMORY = 2 << 30
#: Python start-up, imports and process teardown on a loaded 2-core machine, on top of --timeout.
_STARTUP_SLACK_S = 4.0

_MODELS = b'{"object":"list","data":[{"id":"m","object":"model","max_model_len":1024}]}'
_OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"


def _by_path(health: Behaviour, models: Behaviour | None = None) -> Callable[..., Behaviour]:
    def route(request: SeenRequest) -> Behaviour:
        if request.target == "/health":
            return health
        return models or respond(200, _MODELS, reason="OK")

    return route


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_CHILD_MEMORY, _CHILD_MEMORY))


def _readiness(base_url: str, *flags: str) -> tuple[int, str, float]:
    argv = [sys.executable, "-m", "steps.readiness", "--base-url", base_url, "--model-name", "m",
            "--k8s-check", "off", *flags]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory
    )
    return done.returncode, done.stderr, time.monotonic() - start


def test_readiness_timeout_is_wall_clock_against_a_one_byte_per_second_health(
    hostile_server: StartHostile,
) -> None:
    server = hostile_server(_by_path(drip(_OK_HEAD + b"x" * 100, interval_s=1.0)))
    code, err, elapsed = _readiness(server.url, "--timeout", "5", "--interval", "1")
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"readiness: {server.url} not ready after 5 s"), last
    assert "/health: no complete answer within" in last
    assert elapsed < 5 + _STARTUP_SLACK_S, f"--timeout 5 took {elapsed:.1f} s"
    # Every dripping connection was given up by the client, none left to the server to end.
    assert server.connections
    assert all(c.client_closed_ns is not None for c in server.connections)


def test_readiness_endless_health_body_is_cut_at_the_cap(hostile_server: StartHostile) -> None:
    server = hostile_server(_by_path(endless_body()))
    code, err, elapsed = _readiness(server.url, "--timeout", "5", "--interval", "1")
    assert code == 1, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"/health: HTTP 200 body larger than {MAX_BODY_BYTES:,} bytes; stopped reading" in last
    assert "Traceback" not in err
    assert elapsed < 5 + _STARTUP_SLACK_S
    # What the server managed to write per connection: the cap plus socket buffers, no more.
    assert max(c.bytes_sent for c in server.connections) < MAX_BODY_BYTES + (16 << 20)


def test_check_once_dripping_models_ends_at_the_probe_deadline(
    hostile_server: StartHostile,
) -> None:
    server = hostile_server(_by_path(respond(200, b"{}", reason="OK"), drip(_OK_HEAD, 0.5)))
    start = time.monotonic()
    result = check_once(OneShotClient(server.url), "m", 2.0)
    elapsed = time.monotonic() - start
    assert result.model is None
    assert result.missing.startswith("/v1/models: no complete answer within")
    assert 1.0 < elapsed < 3.0  # /health's time counts against the same probe deadline


def test_check_once_gzip_body_without_asking_is_not_ready_not_a_traceback(
    hostile_server: StartHostile,
) -> None:
    garbled = respond(200, b"not gzip", [("content-encoding", "gzip")], reason="OK")
    server = hostile_server([garbled])
    result = check_once(OneShotClient(server.url), "m", 2.0)
    assert result.model is None and result.missing.startswith("/v1/models: unexpected body")
    assert server.requests[0].headers["accept-encoding"] == "identity"


def test_wait_ready_last_probe_ends_at_the_deadline(hostile_server: StartHostile) -> None:
    """A fast 503, then a server that hangs: the backoff (first gap 1.25 s) must not sleep up
    to the deadline and then give the last probe time past it."""
    server = hostile_server([respond(503, b"loading", reason="Unavailable"), hang()])
    start = time.monotonic()
    with pytest.raises(BenchError, match=r"not ready after 1 s \(2 checks\): /health: no complete"):
        wait_ready(OneShotClient(server.url), "m", timeout_s=1.0, interval_s=10.0)
    elapsed = time.monotonic() - start
    assert elapsed < 1.25, f"--timeout 1 took {elapsed:.2f} s"


_STUCK_RESOLVER = """
import socket, time
def stuck(*args, **kwargs):  # a silent DNS server: the system resolver waits out its retries
    time.sleep(60)
    raise socket.gaierror("no answer")
socket.getaddrinfo = stuck
from steps.http_oneshot import DeadlineExceeded, OneShotClient
try:
    OneShotClient("http://model.invalid:8000").request("GET", "/health", deadline_s=0.5)
except DeadlineExceeded as exc:
    print(exc)
"""


def test_stuck_dns_lookup_does_not_hold_the_process_at_exit() -> None:
    """No DNS server can be silenced here (loopback only), so the resolver is the one fake:
    `socket.getaddrinfo` blocks as it does against a silent server."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _STUCK_RESOLVER], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert done.stdout.strip() == "no complete answer within 0.5 s", done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    assert elapsed < 0.5 + _STARTUP_SLACK_S, f"a stuck lookup held the process {elapsed:.1f} s"


def _config(base_url: str, model_name: str | None = None, tokens: int = 512) -> Config:
    exact = {"type": "fixed", "mean": tokens, "std_dev": 0, "min": tokens, "max": tokens}
    server = {"base_url": base_url} | ({"model_name": model_name} if model_name else {})
    return config_from_dict(
        {
            "load": {"stages": [{"rate": 1, "duration": 1}]},
            "server": server,
            "data": {"input_distribution": exact, "output_distribution": exact},
        }
    )


def test_model_lookup_hanging_server_ends_at_its_deadline(
    hostile_server: StartHostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("steps.load.model_lookup.LOOKUP_DEADLINE_S", 1.5)
    server = hostile_server([hang()])
    start = time.monotonic()
    with pytest.raises(BenchError, match=r"gave no model id \(no complete answer within 1.5 s\)"):
        resolve_model(_config(server.url), {})
    assert time.monotonic() - start < 3.0


def test_model_lookup_endless_body_is_cut_at_the_cap(hostile_server: StartHostile) -> None:
    server = hostile_server([endless_body()])
    with pytest.raises(BenchError, match="body larger than"):
        resolve_model(_config(server.url), {})
    assert max(c.bytes_sent for c in server.connections) < MAX_BODY_BYTES + (16 << 20)


def test_model_lookup_request_longer_than_max_model_len_is_refused(
    hostile_server: StartHostile,
) -> None:
    server = hostile_server([respond(200, _MODELS, reason="OK")])
    too_long = r"up to 1024 tokens \+ 1024 output tokens exceed max_model_len 1024 of 'm'"
    with pytest.raises(UsageError, match=too_long):
        resolve_model(_config(server.url, "m", tokens=1024), {})
    assert resolve_model(_config(server.url, "m", tokens=512), {}) == "m"
    assert resolve_model(_config(server.url, None, tokens=512), {}) == "m"


def test_model_lookup_served_name_that_is_a_path_is_refused(
    hostile_server: StartHostile,
) -> None:
    server = hostile_server([respond(200, b'{"data":[{"id":"../../etc"}]}', reason="OK")])
    with pytest.raises(BenchError, match=r"model name '\.\./\.\./etc' must be segments"):
        resolve_model(_config(server.url), {})
