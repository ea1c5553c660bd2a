"""Timing of the real simulator: TTFT, absolute-deadline chunk spacing, queueing, /metrics.

Tolerances are for a noisy shared 2-core machine: the simulator must never be EARLY (a chunk
before its deadline would be a bug in the model), while lateness is bounded loosely.
"""

from __future__ import annotations

import itertools
import re
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.simulator import SimulatorHandle

MS = 1_000_000


def _stream_body(sim: SimulatorHandle, max_tokens: int, **fields: Any) -> dict[str, Any]:
    return {
        "model": sim.model,
        "prompt": "Tell me a story.",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
        **fields,
    }


def _stream(sim: SimulatorHandle, request_id: str, max_tokens: int, delay_s: float = 0.0) -> None:
    """After `delay_s`, one streamed completion tagged `request_id`, read to its end."""
    time.sleep(delay_s)
    httpx.post(
        f"{sim.base_url}/v1/completions",
        json=_stream_body(sim, max_tokens),
        headers={"X-Request-Id": request_id},
        timeout=30,
    ).raise_for_status()


def _truth_for(sim: SimulatorHandle, request_id: str) -> dict[str, Any]:
    (record,) = [r for r in sim.truth() if r["request_id"] == request_id]
    return record


def test_simulator_chunks_at_absolute_itl_deadlines(simulator: SimulatorHandle) -> None:
    request_id = f"timing-{time.time_ns()}"
    httpx.post(
        f"{simulator.base_url}/v1/completions",
        json=_stream_body(simulator, 128),
        headers={"X-Request-Id": request_id},
        timeout=30,
    ).raise_for_status()
    record = _truth_for(simulator, request_id)
    times = record["chunk_wall_ns"]
    assert len(times) == 128
    ttft_ns = times[0] - record["arrival_wall_ns"]
    assert 50 * MS - MS <= ttft_ns <= 50 * MS + 20 * MS
    # Never early: chunk k is due at arrival + ttft + k * itl (the server deadlines run on the
    # monotonic clock, truth on the wall clock: 1 ms slack).
    due = record["arrival_wall_ns"] + 50 * MS
    lateness = [t - (due + k * 10 * MS) for k, t in enumerate(times)]
    assert min(lateness) >= -MS
    # Typically < 1 ms; 10 ms leaves room for a busy CI machine (seen: 4.6 ms beside a mypy run)
    # while a constant offset of one ITL or more still fails.
    assert statistics.median(lateness) <= 10 * MS
    assert max(lateness) <= 50 * MS
    # Absolute deadlines: one late chunk does not shift the rest, so the mean gap is exact,
    # and one engine step per ITL makes the typical gap the ITL itself.
    mean_gap = (times[-1] - times[0]) / 127
    assert abs(mean_gap - 10 * MS) <= 0.5 * MS
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert abs(statistics.median(gaps) - 10 * MS) <= MS


def test_simulator_prefill_adds_per_prompt_token(simulator_factory: Any) -> None:
    sim = simulator_factory("--ttft-ms", "20", "--itl-ms", "1", "--prefill-us-per-token", "500")
    body = _stream_body(sim, 2, prompt=list(range(200)))
    httpx.post(f"{sim.base_url}/v1/completions", json=body, timeout=30).raise_for_status()
    (record,) = sim.truth()
    ttft_ns = record["chunk_wall_ns"][0] - record["arrival_wall_ns"]
    assert 120 * MS - MS <= ttft_ns <= 120 * MS + 30 * MS  # 20 ms + 200 x 0.5 ms


def _gauge(metrics: str, name: str) -> float:
    samples = _parse_prometheus(metrics)
    assert name in samples, f"{name} missing from /metrics"
    return samples[name][0][1]


def test_simulator_max_num_seqs_queues_fifo_and_ttft_grows(simulator_factory: Any) -> None:
    sim = simulator_factory("--max-num-seqs", "1", "--ttft-ms", "50", "--itl-ms", "20")

    def send(index: int) -> None:
        httpx.post(
            f"{sim.base_url}/v1/completions",
            json=_stream_body(sim, 10),
            headers={"X-Request-Id": f"q{index}"},
            timeout=30,
        ).raise_for_status()

    running_seen, waiting_seen = set(), set()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(send, i) for i in range(3)]
        # Each request holds the one slot for 50 + 9 x 20 = 230 ms: poll the gauges meanwhile.
        while not all(f.done() for f in futures):
            metrics = httpx.get(f"{sim.base_url}/metrics").text
            running_seen.add(_gauge(metrics, "vllm:num_requests_running"))
            waiting_seen.add(_gauge(metrics, "vllm:num_requests_waiting"))
            time.sleep(0.02)
        for future in futures:
            future.result()
    assert max(running_seen) == 1
    assert max(waiting_seen) == 2
    records = sorted(sim.truth(), key=lambda r: r["chunk_wall_ns"][0])
    ttfts = [r["chunk_wall_ns"][0] - r["arrival_wall_ns"] for r in records]
    # Served one at a time: each first token after the previous request's last chunk.
    for before, after in itertools.pairwise(records):
        assert after["chunk_wall_ns"][0] >= before["chunk_wall_ns"][-1] + 50 * MS - MS
    # Queueing time is part of TTFT (how far apart the threads' requests arrive varies).
    assert ttfts[0] <= 50 * MS + 30 * MS
    assert ttfts == sorted(ttfts)
    assert ttfts[2] >= 200 * MS


def _parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name (`..._bucket`, `..._total`), as prometheus_client's parser reads them: a
    line that is not valid exposition format raises."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_simulator_metrics_parse_and_count_requests(simulator_factory: Any) -> None:
    sim = simulator_factory("--ttft-ms", "5", "--itl-ms", "1")
    for max_tokens in (3, 4, 5):
        body = _stream_body(sim, max_tokens, prompt=list(range(10)))
        httpx.post(f"{sim.base_url}/v1/completions", json=body, timeout=30).raise_for_status()
    samples = _parse_prometheus(httpx.get(f"{sim.base_url}/metrics").text)
    assert samples["vllm:prompt_tokens_total"][0][1] == 30
    assert samples["vllm:generation_tokens_total"][0][1] == 12
    assert sum(v for _, v in samples["vllm:request_success_total"]) == 3
    for name in ("vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds"):
        buckets = [v for _, v in samples[f"{name}_bucket"]]
        assert buckets == sorted(buckets)
        assert buckets[-1] == samples[f"{name}_count"][0][1] == 3
    assert samples["vllm:num_requests_running"][0][1] == 0


@pytest.mark.parametrize("tokens_per_chunk", ["1", "3"])
def test_simulator_itl_histogram_matches_truth_chunk_gaps(
    simulator_factory: Any, tokens_per_chunk: str
) -> None:
    """Concurrent streams (one ITL update per step) and multi-token chunks (one per chunk)."""
    # ITL 20 ms: a gap observed wrongly is off by a step or more, far above the tolerance below.
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "20", "--tokens-per-chunk", tokens_per_chunk
    )

    def send(delay_s: float) -> None:
        time.sleep(delay_s)
        body = _stream_body(sim, 18, prompt=list(range(10)))
        httpx.post(f"{sim.base_url}/v1/completions", json=body, timeout=30).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(send, 0.047 * i) for i in range(4)]:
            future.result()
    samples = _parse_prometheus(httpx.get(f"{sim.base_url}/metrics").text)
    truth = sim.truth()
    gaps_s = [
        (b - a) / 1e9 for record in truth for a, b in itertools.pairwise(record["chunk_wall_ns"])
    ]
    name = "vllm:inter_token_latency_seconds"
    assert (
        samples[f"{name}_count"][0][1]
        == len(gaps_s)
        == sum(len(r["chunk_wall_ns"]) - 1 for r in truth)
    )
    # Per stream the gaps add up to its last step minus its first on the monotonic clock, and
    # to its last write minus its first in truth: equal but for where in its step each write
    # fell (microseconds; a few ms if the simulator was preempted mid-step).
    assert abs(samples[f"{name}_sum"][0][1] - sum(gaps_s)) < 0.002 * len(truth)
    buckets = [v for _, v in samples[f"{name}_bucket"]]
    assert buckets == sorted(buckets)
    assert buckets[-1] == len(gaps_s)


def test_simulator_keep_alive_pipelined_requests_answered_in_order(
    simulator: SimulatorHandle,
) -> None:
    host, port = simulator.base_url.removeprefix("http://").split(":")
    request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request % b"/health" + request % b"/v1/models" + request % b"/nope")
        data = b""
        while data.count(b"HTTP/1.1 ") < 3 or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early after {data!r}"
            data += chunk
    statuses = re.findall(rb"HTTP/1.1 (\d+)", data)
    assert statuses == [b"200", b"200", b"404"]


def test_simulator_concurrent_streams_share_decode_steps(simulator_factory: Any) -> None:
    """Continuous batching: a stream that joins mid-flight emits on the running stream's steps."""
    sim = simulator_factory("--ttft-ms", "30", "--itl-ms", "20")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_stream, sim, "a", 40)
        # B arrives half a step off A's grid: on a grid of its own (one timer per stream) its
        # chunks would leave ~10 ms away from A's; in the engine they share A's steps.
        time.sleep(0.110)
        second = pool.submit(_stream, sim, "b", 15)
        first.result()
        second.result()
    a, b = _truth_for(sim, "a")["chunk_wall_ns"], _truth_for(sim, "b")
    b_times = b["chunk_wall_ns"]
    assert len(b_times) == 15
    # Every chunk of B leaves in the same step as a chunk of A (microseconds apart, not 20 ms).
    for t in b_times:
        assert min(abs(t - s) for s in a) <= 3 * MS
    # B's first token waits for A's next step after prefill: TTFT in [30, 30 + itl] ms (+ slack).
    ttft_ns = b_times[0] - b["arrival_wall_ns"]
    assert 30 * MS - MS <= ttft_ns <= 50 * MS + 15 * MS
    # Never early: chunk k no sooner than arrival + ttft + k * itl.
    assert all(t >= b["arrival_wall_ns"] + (30 + 20 * k) * MS - MS for k, t in enumerate(b_times))
    # Steps are absolute deadlines: the mean gap is exactly the ITL.
    assert abs((b_times[-1] - b_times[0]) / 14 - 20 * MS) <= 0.5 * MS


def test_simulator_prefill_shorter_than_itl_never_pulls_running_streams_early(
    simulator_factory: Any,
) -> None:
    """Requests admitted between steps, due before the next step, must wait for it.

    With TTFT 1 ms and ITL 50 ms a request arriving mid-interval finishes prefill before the
    running stream's next step; re-anchoring the grid on it would send that stream's next
    chunk early.
    """
    sim = simulator_factory("--ttft-ms", "1", "--itl-ms", "50")

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_stream, sim, "long", 12)]
        futures += [pool.submit(_stream, sim, f"short-{i}", 2, 0.075 + 0.11 * i) for i in range(3)]
        for future in futures:
            future.result()
    long_times = _truth_for(sim, "long")["chunk_wall_ns"]
    assert len(long_times) == 12
    # Never early on its own grid (a late step may be followed by a short gap: deadlines are
    # absolute, so the grid itself is the check). The grid's origin is the typical offset, not
    # the first chunk's: an idle VM wakes late for that first 1 ms timer (1.8 ms seen), which
    # would make every later, on-time chunk look early. Re-anchoring on an admission pulls the
    # following chunks tens of ms early (up to 98 ms seen), far past this bound.
    offsets_ms = [(t - long_times[0]) / MS - 50 * k for k, t in enumerate(long_times)]
    assert min(offsets_ms) - statistics.median(offsets_ms) >= -3, offsets_ms
    for i in range(3):  # and the short ones rode on the long stream's steps
        for t in _truth_for(sim, f"short-{i}")["chunk_wall_ns"]:
            assert min(abs(t - s) for s in long_times) <= 3 * MS


def _context_switches(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return sum(int(n) for n in re.findall(r"^\w*voluntary_ctxt_switches:\s+(\d+)$", status, re.M))


def test_simulator_idle_engine_arms_no_timer(simulator_factory: Any) -> None:
    """After the last stream the engine stops stepping: the process sleeps until a request."""
    sim = simulator_factory("--ttft-ms", "1", "--itl-ms", "2")
    body = _stream_body(sim, 20)
    httpx.post(f"{sim.base_url}/v1/completions", json=body, timeout=30).raise_for_status()
    time.sleep(0.1)
    before = _context_switches(sim.pid)
    time.sleep(0.5)  # a 2 ms step timer would wake the process ~250 times meanwhile
    assert _context_switches(sim.pid) - before <= 10


def _decode_gaps_ms(record: dict[str, Any]) -> list[float]:
    stamps = record["chunk_wall_ns"]
    return [(b - a) / MS for a, b in itertools.pairwise(stamps)]


def test_simulator_noise_paces_each_request_at_its_own_speed_with_one_stall(
    simulator_factory: Any,
) -> None:
    """--itl-jitter and --stall-*: per request one decode speed (seeded lognormal factor on the
    20 ms ITL), and with --stall-rate 1 exactly one 300 ms stall inside each stream; chunks are
    timed from the first token, so a gap is never shorter than its share of the model."""
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "20", "--itl-jitter", "0.3",
        "--stall-rate", "1", "--stall-ms", "300", "--seed", "7",
    )  # fmt: skip
    for i in range(5):
        _stream(sim, f"noise-{i}", 12)
    levels = []
    for i in range(5):
        gaps = _decode_gaps_ms(_truth_for(sim, f"noise-{i}"))
        assert len(gaps) == 11
        first, second, *_ = sorted(gaps, reverse=True)
        # One stall per stream: its gap is the request's own gap + 300 ms (less only by how late
        # the chunk before it was: a few ms); a stalled machine could add a gap, never take one.
        assert first >= 290 and second < 150, gaps
        levels.append(statistics.median(g for g in gaps if g != first))
        # Deadlines from the first token: the stream as a whole is never early.
        assert sum(gaps) >= 300 + 11 * levels[-1] - 11, gaps
    # Decode speed differs per request (sigma 0.3); the grid (noise off) would give 20 ms each.
    assert max(levels) / min(levels) > 1.15, levels
    assert any(abs(level - 20) > 2 for level in levels), levels


def test_simulator_noise_off_keeps_the_lockstep_grid(simulator_factory: Any) -> None:
    """The noise flags at 0 (their default) change nothing: every gap is the 20 ms step."""
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "20", "--itl-jitter", "0", "--stall-rate", "0",
    )  # fmt: skip
    _stream(sim, "quiet", 12)
    gaps = _decode_gaps_ms(_truth_for(sim, "quiet"))
    # Steps at absolute deadlines: a gap is short only after a late step. An idle VM wakes the
    # first steps late and catches up over a few (seen: median 19.6 ms, first step ~4 ms late),
    # so the bounds allow that and still tell apart jitter or stalls (their tests below).
    assert len(gaps) == 11 and all(g < 35 for g in gaps), gaps
    assert 19.0 <= statistics.median(gaps) < 21 and 214 <= sum(gaps) < 240, gaps
