"""Failure injection, startup delay and shutdown of the real simulator process."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle


def _body(sim: SimulatorHandle, **fields: Any) -> dict[str, Any]:
    return {
        "model": sim.model,
        "prompt": "Say something.",
        "max_tokens": 20,
        "ignore_eos": True,
        "stream": True,
        **fields,
    }


def test_simulator_error_rate_1_answers_5xx_json(simulator_factory: Any) -> None:
    sim = simulator_factory("--error-rate", "1", "--ttft-ms", "0", "--itl-ms", "0")
    statuses = set()
    for i in range(20):
        response = httpx.post(
            f"{sim.base_url}/v1/completions",
            json=_body(sim),
            headers={"X-Request-Id": f"r{i}"},
            timeout=30,
        )
        statuses.add(response.status_code)
        assert response.json()["error"]["code"] == response.status_code
    assert statuses == {500, 503}
    truth = sim.truth()
    assert {r["fault"] for r in truth} == {"error_500", "error_503"}
    assert all(r["chunk_wall_ns"] == [] for r in truth)


def test_simulator_disconnect_rate_1_closes_mid_stream(simulator_factory: Any) -> None:
    sim = simulator_factory("--disconnect-rate", "1", "--ttft-ms", "5", "--itl-ms", "1")
    received = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{sim.base_url}/v1/completions", json=_body(sim)) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            received.append(line)
    (record,) = sim.truth()
    assert record["fault"] == "disconnect"
    assert 1 <= record["completion_tokens"] < 20
    assert len([line for line in received if line.startswith("data: {")]) == len(
        record["chunk_wall_ns"]
    )
    assert "[DONE]" not in "".join(received)


def test_simulator_malformed_rate_1_one_bad_event_mid_stream(simulator_factory: Any) -> None:
    sim = simulator_factory("--malformed-rate", "1", "--ttft-ms", "5", "--itl-ms", "1")
    text = httpx.post(f"{sim.base_url}/v1/completions", json=_body(sim), timeout=30).text
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
    bad = []
    for index, event in enumerate(events[:-1]):
        try:
            json.loads(event)
        except ValueError:
            bad.append(index)
    assert len(bad) == 1
    assert 0 < bad[0] < len(events) - 2  # after the first content event, before the last
    assert events[-1] == "[DONE]"
    (record,) = sim.truth()
    assert record["fault"] == "malformed"
    assert record["completion_tokens"] == 20


def test_simulator_slow_first_byte_delays_response_head(simulator_factory: Any) -> None:
    sim = simulator_factory("--slow-first-byte-ms", "300", "--ttft-ms", "10", "--itl-ms", "1")
    start = time.monotonic()
    with httpx.stream(
        "POST", f"{sim.base_url}/v1/completions", json=_body(sim), timeout=30
    ) as response:
        head_s = time.monotonic() - start
        response.read()
    assert head_s >= 0.3
    (record,) = sim.truth()
    assert record["chunk_wall_ns"][0] - record["arrival_wall_ns"] >= 300_000_000


def test_simulator_startup_delay_503_until_ready(simulator_factory: Any) -> None:
    sim = simulator_factory("--startup-delay-s", "1.5", wait_healthy=False)
    assert httpx.get(f"{sim.base_url}/health").status_code == 503
    assert httpx.get(f"{sim.base_url}/v1/models").status_code == 503
    response = httpx.post(f"{sim.base_url}/v1/completions", json=_body(sim), timeout=30)
    assert response.status_code == 503
    deadline = time.monotonic() + 10
    while httpx.get(f"{sim.base_url}/health").status_code != 200:
        assert time.monotonic() < deadline, "never became healthy"
        time.sleep(0.05)
    assert httpx.get(f"{sim.base_url}/v1/models").json()["data"][0]["id"] == sim.model


def test_simulator_sigterm_mid_stream_exits_0(simulator_factory: Any) -> None:
    sim = simulator_factory("--ttft-ms", "10", "--itl-ms", "50")
    with httpx.stream(
        "POST", f"{sim.base_url}/v1/completions", json=_body(sim, max_tokens=200), timeout=30
    ) as response:
        lines = response.iter_lines()
        next(lines)
        sim.process.send_signal(signal.SIGTERM)
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in lines:
                pass
    assert sim.process.wait(10) == 0
    assert "shutting down: 1 connections open" in sim.log_text()
