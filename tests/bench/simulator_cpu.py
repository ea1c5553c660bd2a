"""Benchmark (not a test): the simulator's own CPU time per streamed 128-token request.

    .venv/bin/python -m tests.bench.simulator_cpu [--requests 300] [--rate 50] [--tokens 128]
        [--tokens-per-chunk 1] [--rounds 1] [--baseline-root DIR]

Starts the real simulator (TTFT 50 ms, ITL 10 ms) as a subprocess, sends `--requests` streamed
completions at a fixed rate (absolute deadlines) and reads every byte, then prints the simulator
process's CPU time per request: user and system from /proc/<pid>/stat (10 ms ticks) and the total
from /proc/<pid>/schedstat (ns), startup excluded. It also measures the simulator's CPU while idle
for a second afterwards (it must be ~0), chunk gaps and lateness from ground truth, and the load
average, because the machine is shared.

The client is a minimal raw-HTTP/1.1 reader on uvloop (keep-alive connections, no parsing beyond
the status line and the terminating chunk), not httpx: its own CPU is a small fraction of httpx's,
so it competes less with the process being measured on a 2-core machine. Its CPU is reported too.

Every round also runs the floor, `tests.bench.bare_stream_server`: the same requests, streams,
chunk sizes and step grid with no simulator logic at all. What the machine charges for the I/O
itself (loopback TCP writes, wakeups from idle) is large on a small VM and is no saving the
simulator can make, so the summary prints the simulator's CPU over the floor's from the same
time window: that ratio, not the absolute figure, is what a change to the simulator moves.

`--baseline-root DIR` runs the simulator of another checkout (e.g. `git archive HEAD` unpacked in
a temporary directory) alternately with this one, `--rounds` times each, so before/after figures
come from the same time window; the summary prints the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.simulator import ROOT, SimulatorHandle, start_simulator

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_END = b"0\r\n\r\n"
_IDLE_S = 1.0
MS = 1e6
_FLOOR = "floor"
_FLOOR_MODULE = "tests.bench.bare_stream_server"


def _cpu_s(pid: int) -> tuple[float, float, float]:
    """(utime, stime, total on-CPU) of a process in seconds.

    utime/stime are fields 14 and 15 of /proc/<pid>/stat (clock ticks); the total is the first
    field of /proc/<pid>/schedstat (ns), precise where ticks are coarse.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    on_cpu_ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return int(fields[11]) / _TICKS_PER_S, int(fields[12]) / _TICKS_PER_S, on_cpu_ns / 1e9


def _preemptions(pid: int) -> int:
    """Involuntary context switches so far: the simulator preempted (e.g. by a woken reader)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])


class _Connection(asyncio.Protocol):
    """One keep-alive connection reading one chunked response at a time, as raw bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None
        self.status = 0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport type

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.status = 0
        self.tail = b""
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        if not self.status:
            self.status = int(data[9:12])
        self.tail = (self.tail + data)[-len(_END) :]
        if self.tail == _END and self.done is not None and not self.done.done():
            self.done.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(0)


def _request(model: str, tokens: int, index: int) -> bytes:
    body = json.dumps(
        {
            "model": model,
            "prompt": list(range(1000, 1512)),
            "max_tokens": tokens,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"X-Request-Id: b{index}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _drive(sim: SimulatorHandle, requests: int, rate: float, tokens: int) -> list[int]:
    loop = asyncio.get_running_loop()
    host, port_text = sim.base_url.removeprefix("http://").split(":")
    port = int(port_text)
    idle: list[_Connection] = []
    bodies = [_request(sim.model, tokens, i) for i in range(requests)]

    async def one(index: int, due: float) -> int:
        await asyncio.sleep(max(0.0, due - loop.time()))
        conn = idle.pop() if idle else (await loop.create_connection(_Connection, host, port))[1]
        status = await conn.send(bodies[index])
        if status:
            idle.append(conn)
        return status

    t0 = loop.time() + 0.2
    statuses = await asyncio.gather(*(one(i, t0 + i / rate) for i in range(requests)))
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    return statuses


@dataclass
class Round:
    """One run against one simulator."""

    label: str
    requests: int
    ok: int
    wall_s: float
    user_s: float
    system_s: float
    on_cpu_s: float
    idle_cpu_s: float
    client_cpu_s: float
    preemptions: int
    chunks: int
    gaps_ms: list[float]
    lateness_ms: list[float]

    @property
    def ms_per_request(self) -> float:
        return 1e3 * self.on_cpu_s / max(self.requests, 1)


def _client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one_round(label: str, root: Path, args: argparse.Namespace, log_dir: Path) -> Round:
    import uvloop

    flags: tuple[str, ...] = ("--ttft-ms", "50", "--itl-ms", "10")
    log_path = log_dir / f"{label}-{time.monotonic_ns()}.log"
    if label == _FLOOR:
        sim = start_simulator(flags, log_path, wait_healthy=False, module=_FLOOR_MODULE)
    else:
        flags += ("--tokens-per-chunk", args.tokens_per_chunk)
        sim = start_simulator(flags, log_path, cwd=root)
    try:
        before = _cpu_s(sim.pid)
        preempted = _preemptions(sim.pid)
        client_before = _client_cpu_s()
        wall = time.monotonic()
        statuses = uvloop.run(_drive(sim, args.requests, args.rate, args.tokens))
        wall = time.monotonic() - wall
        client_cpu = _client_cpu_s() - client_before
        after = _cpu_s(sim.pid)
        preempted = _preemptions(sim.pid) - preempted
        time.sleep(_IDLE_S)
        idle_cpu = _cpu_s(sim.pid)[2] - after[2]
        truth = [] if label == _FLOOR else sim.truth()
    finally:
        sim.stop()
    user, system, on_cpu = (b - a for a, b in zip(before, after, strict=True))
    return Round(
        label=label,
        requests=len(statuses),
        ok=sum(1 for status in statuses if status == 200),
        wall_s=wall,
        user_s=user,
        system_s=system,
        on_cpu_s=on_cpu,
        idle_cpu_s=idle_cpu,
        client_cpu_s=client_cpu,
        preemptions=preempted,
        chunks=sum(len(r["chunk_wall_ns"]) for r in truth),
        gaps_ms=_gaps_ms(truth),
        lateness_ms=_lateness_ms(truth),
    )


def _gaps_ms(truth: list[dict[str, Any]]) -> list[float]:
    return [
        (b - a) / MS
        for record in truth
        for a, b in zip(record["chunk_wall_ns"], record["chunk_wall_ns"][1:], strict=False)
    ]


def _lateness_ms(truth: list[dict[str, Any]]) -> list[float]:
    """Chunk k's send time minus first chunk + k x 10 ms (one token per chunk only)."""
    return [
        (t - record["chunk_wall_ns"][0] - k * 10 * MS) / MS
        for record in truth
        if record["chunk_tokens"] and max(record["chunk_tokens"]) == 1
        for k, t in enumerate(record["chunk_wall_ns"])
    ]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def _print_round(r: Round, rate: float) -> None:
    print(
        f"[{r.label}] {r.requests} sent, {r.ok} ok at {rate:g}/s in {r.wall_s:.1f} s, "
        f"{r.chunks} chunks | sim CPU {r.ms_per_request:.2f} ms/request "
        f"(user {r.user_s:.2f} s, sys {r.system_s:.2f} s, on-CPU {r.on_cpu_s:.3f} s), "
        f"idle {1e3 * r.idle_cpu_s / _IDLE_S:.1f} ms/s, preempted "
        f"{r.preemptions / max(r.requests, 1):.0f}x/request | gaps p50 {_pct(r.gaps_ms, 0.5):.2f} "
        f"p99 {_pct(r.gaps_ms, 0.99):.2f} ms | client CPU "
        f"{1e3 * r.client_cpu_s / max(r.requests, 1):.2f} ms/request"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one line per round plus a summary."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--tokens-per-chunk", default="1")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-root", type=Path, default=None)
    args = parser.parse_args(argv)
    targets = [("current", ROOT)]
    if args.baseline_root is not None:
        targets.insert(0, ("baseline", args.baseline_root.resolve()))
    if args.tokens == 128 and args.tokens_per_chunk == "1":
        targets.insert(0, (_FLOOR, ROOT))
    else:
        print("no floor round: the floor streams 128 one-token chunks only")
    print(f"load average before {os.getloadavg()} on {os.cpu_count()} CPUs (shared machine)")
    results: dict[str, list[Round]] = {label: [] for label, _ in targets}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for label, root in targets:
                result = _one_round(label, root, args, Path(tmp))
                _print_round(result, args.rate)
                results[label].append(result)
    print(f"load average after  {os.getloadavg()}")
    medians = {
        label: statistics.median(r.ms_per_request for r in rounds)
        for label, rounds in results.items()
    }
    for label, rounds in results.items():
        if label == _FLOOR:
            print(f"{label:8} median CPU {medians[label]:.2f} ms/request (bare I/O, no logic)")
            continue
        late = [x for r in rounds for x in r.lateness_ms]
        print(
            f"{label:8} median sim CPU {medians[label]:.2f} ms/request over {len(rounds)} "
            f"round(s); lateness vs first+k*itl p50 {_pct(late, 0.5):.2f} "
            f"p99 {_pct(late, 0.99):.2f} min {min(late, default=float('nan')):.2f} ms"
        )
    for label in ("current", "baseline"):
        if label in medians and _FLOOR in medians:
            over = medians[label] - medians[_FLOOR]
            print(
                f"{label:8} over the floor: {over:+.2f} ms/request, ratio "
                f"{medians[label] / medians[_FLOOR]:.2f}"
            )
    if "baseline" in medians:
        print(f"ratio current/baseline {medians['current'] / medians['baseline']:.2f}")
    failed = any(r.ok != r.requests for rounds in results.values() for r in rounds)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
