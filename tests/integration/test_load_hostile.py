"""The load step against servers that misbehave: the real simulator's ground truth for what a
timed-out stream costs the server, and the hostile server (tests/fakes/hostile.py) for
protocol abuse. Every limit here is checked on the wall clock, from the server's side."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.hostile import (
    Behaviour,
    HostileServer,
    SeenRequest,
    content_chunk,
    endless_chunks,
    endless_sse_line,
    raw,
    respond,
    sse,
    usage_chunk,
)
from tests.fixtures.simulator import SimulatorHandle
from tests.helpers.load_run import run_load

StartSimulator = Callable[..., SimulatorHandle]


def _settled_truth(sim: SimulatorHandle, n: int, timeout_s: float = 5.0) -> dict[str, Any]:
    """The simulator's truth once all `n` requests have ended (completed or closed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        truth = sim.truth()
        ended = [t for t in truth if t["fault"] is not None or t["http_status"] is not None]
        if len(ended) == n or time.monotonic() > deadline:
            return {t["request_id"]: t for t in truth}
        time.sleep(0.05)


def test_load_timed_out_stream_stops_on_the_server_at_the_timeout(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    # 200 tokens at 50 ms take 10 s; the client gives up after 2 s. The server must see the
    # close then (its slot freed), not keep generating until the load step exits.
    sim = simulator_factory("--ttft-ms", "5", "--itl-ms", "50")
    code, rows, run_json = run_load(
        tmp_path, sim.base_url, qwen_tokenizer_dir,
        "--rate", "1", "--duration", "3", "--num-workers", "1",
        "--output-tokens", "200", "--request-timeout", "2",
    )  # fmt: skip
    assert code == 1
    assert [r["status"] for r in rows] == ["timeout"] * 3
    truth = _settled_truth(sim, 3)
    for r in rows:
        served = truth[f"{run_json['run_id']}-0-{r['request_index']}"]
        assert served["fault"] == "client_closed"
        gave_up_wall_ns = run_json["wall_start_ns"] + r["end_ns"]
        # A few 50 ms steps at most (the server notices the close at its next write, on a
        # loaded machine maybe later); never the seconds until the load step exits.
        assert served["chunk_wall_ns"][-1] < gave_up_wall_ns + 500_000_000
        assert len(served["chunk_wall_ns"]) <= 50  # 2 s / 50 ms = 40, of 200


def _serving(completions: Behaviour) -> Callable[[SeenRequest], Behaviour]:
    """A server that lists the model properly, then answers every completion with `completions`."""
    models = json.dumps({"object": "list", "data": [{"id": "Qwen/Qwen3-8B", "object": "model"}]})

    def route(request: SeenRequest) -> Behaviour:
        if request.target.endswith("/v1/models"):
            return respond(200, models.encode(), [("content-type", "application/json")], "OK")
        return completions

    return route


@pytest.mark.parametrize(
    ("completions", "error_part"),
    [
        (endless_sse_line(), "SSE event longer than"),
        (endless_chunks(), "more than 96 SSE events"),  # 2 x 16 output tokens + 64
    ],
    ids=["endless-line", "endless-chunks"],
)
def test_load_endless_stream_ends_at_its_limit_as_a_row_connection_closed(
    hostile_server: Callable[..., HostileServer],
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    completions: Behaviour,
    error_part: str,
) -> None:
    # request_timeout 60 s: only the stream's own limits can end these requests in time.
    server = hostile_server(_serving(completions))
    started = time.monotonic()
    code, rows, _ = run_load(
        tmp_path, server.url, qwen_tokenizer_dir,
        "--rate", "2", "--duration", "1", "--num-workers", "1",
        "--output-tokens", "16", "--request-timeout", "60",
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert code == 1
    assert [r["status"] for r in rows] == ["protocol_error"] * 2
    assert all(error_part in r["error"] and r["http_status"] == 200 for r in rows)
    streams = [c for c in server.connections if any(
        q.target.endswith("/v1/completions") for q in c.requests)]  # fmt: skip
    assert len(streams) == 2
    assert all(c.client_closed_ns is not None for c in streams)


def _first_attempts_crossed_by_close() -> Callable[[SeenRequest], Behaviour]:
    """A server whose idle close crosses the first attempt of every completion: that attempt is
    closed unanswered, the resend (same X-Request-Id) streams a good answer, kept alive."""
    seen: set[str] = set()
    good = sse([content_chunk(" tok", [1]), usage_chunk(512, 1)], keep_alive=True)
    models = _serving(good)

    def route(request: SeenRequest) -> Behaviour:
        request_id = request.headers.get("x-request-id")
        if request_id is None or request_id in seen:
            return models(request)
        seen.add(request_id)
        return raw()

    return route


def test_load_stale_closes_resent_counted_in_run_json_and_summary(
    hostile_server: Callable[..., HostileServer],
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every request goes out on a pooled connection (the primed one, then the resend's, kept
    # alive), which the server closes unanswered at once: each is resent once and succeeds.
    server = hostile_server(_first_attempts_crossed_by_close())
    code, rows, run_json = run_load(
        tmp_path, server.url, qwen_tokenizer_dir,
        "--rate", "2", "--duration", "1", "--num-workers", "1", "--output-tokens", "1",
    )  # fmt: skip
    assert code == 0
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert run_json["resent_requests"] == 2
    assert "2 resent after a stale keep-alive close" in capsys.readouterr().err
    completion_posts = [r for r in server.requests if r.target.endswith("/v1/completions")]
    assert len(completion_posts) == 4  # two attempts per request, never a third
