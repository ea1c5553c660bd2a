"""Benchmark (not a test): the simulator's own CPU seconds per streamed 128-token request.

    .venv/bin/python -m tests.bench.simulator_cpu [--requests 300] [--rate 50] [--tokens 128]

Starts the real simulator (TTFT 50 ms, ITL 10 ms), sends `--requests` streamed completions at a
fixed rate (absolute deadlines) from an httpx client on uvloop, reads every byte, and prints the
simulator process's CPU time (utime + stime from /proc/<pid>/stat, startup excluded) per
request. The client shares the machine, so on a busy host the figure is an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.fixtures.simulator import SimulatorHandle, start_simulator

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICKS_PER_S, int(fields[12]) / _TICKS_PER_S


async def _drive(sim: SimulatorHandle, requests: int, rate: float, tokens: int) -> list[int]:
    body = {
        "model": sim.model,
        "prompt": list(range(1000, 1512)),
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=60, limits=limits) as client:

        async def one(index: int, due: float) -> int:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            async with client.stream(
                "POST", "/v1/completions", json=body, headers={"X-Request-Id": f"b{index}"}
            ) as response:
                async for _ in response.aiter_raw():
                    pass
                return response.status_code

        t0 = time.monotonic() + 0.2
        return await asyncio.gather(*(one(i, t0 + i / rate) for i in range(requests)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one summary block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--tokens-per-chunk", default="1")
    args = parser.parse_args(argv)
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        flags = ("--ttft-ms", "50", "--itl-ms", "10", "--tokens-per-chunk", args.tokens_per_chunk)
        sim = start_simulator(flags, Path(tmp) / "simulator.log")
        try:
            cpu_before = _cpu_s(sim.pid)
            wall = time.monotonic()
            statuses = uvloop.run(_drive(sim, args.requests, args.rate, args.tokens))
            wall = time.monotonic() - wall
            user, system = (b - a for a, b in zip(cpu_before, _cpu_s(sim.pid), strict=True))
            truth = sim.truth()
        finally:
            sim.stop()
    gaps_ms = [
        (b - a) / 1e6
        for record in truth
        for a, b in zip(record["chunk_wall_ns"], record["chunk_wall_ns"][1:], strict=False)
    ]
    ok = sum(1 for status in statuses if status == 200)
    print(f"requests      {len(statuses)} sent, {ok} ok, {args.rate:g}/s, {wall:.1f} s wall")
    print(f"chunks        {sum(len(r['chunk_wall_ns']) for r in truth)} (truth)")
    per_request_ms = 1e3 * (user + system) / max(len(statuses), 1)
    print(
        f"sim CPU       {user + system:.2f} s total (user {user:.2f} s, system {system:.2f} s), "
        f"{per_request_ms:.2f} ms/request"
    )
    if gaps_ms:
        gaps_ms.sort()
        p99 = gaps_ms[int(0.99 * (len(gaps_ms) - 1))]
        print(
            f"chunk gaps    p50 {statistics.median(gaps_ms):.2f} ms, p99 {p99:.2f} ms "
            f"(configured ITL 10 ms)"
        )
    print(f"load average  {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine)")
    return 0 if ok == len(statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
