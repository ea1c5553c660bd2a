"""Benchmark of the load step against the simulator (not a test; run by hand).

    .venv/bin/python -m tests.bench.loadgen [--rates 1,50,100,200] [--duration 20]
        [--num-workers 2] [--ttft-ms 50] [--itl-ms 10] [--root DIR] [--roots A,B] [--repeat K]
    .venv/bin/python -m tests.bench.loadgen --fanout [--rates 100] [--repeat 3]
    .venv/bin/python -m tests.bench.loadgen --scrape [--scrape-interval 1] [--repeat 3]

Starts the real simulator (TTFT 50 ms, ITL 10 ms, Qwen tokenizer, 512 in / 128 out, streaming)
and runs `python -m steps.load` once per rate, then prints one table:
achieved vs requested rate (client sends, and arrivals as the server saw them), schedule delay
p50/p99/max, TTFT error vs the server's truth (client TTFT - server TTFT, matched by
X-Request-Id) p50/p99 of |error| and its two halves on the shared wall clock (p99 of: request
write -> server parsed it, which includes the server's own read lag; first chunk written ->
client read it), chunk-gap p99 client vs server, and client CPU per request:
`run` = run.json client_cpu_s (workers' rusage from t0 to the end + the main process), `all` =
rusage of the whole load-step process tree including start-up, tokenizer and prompt building;
the simulator's own CPU per request (from /proc, over the same rate) is a separate column, and
the 1-minute load average before/after each rate is printed, since the machine may be shared.
`--root DIR` runs `steps.load` from another checkout (e.g. `git archive <commit> | tar -x -C DIR`)
against the same simulator; `--roots A,B --repeat K` runs every rate from each checkout K times,
interleaved (A B, then B A, ...), one row each: the A/B of a client change in one window.
`--fanout` instead runs each rate as one pod with `--num-workers` workers and as that many pods
(`--load-pods`, a real coordinator) of one worker each, interleaved `--repeat` times, and adds
what the merge must keep: the request indexes (0..n-1, no gap, no duplicate), the merged
schedule delay p50/p99, the gaps between arrivals as the simulator saw them (p1/p50/p99 ms),
the pods' clock offsets and the spread of their first sends.
`--scrape` runs each rate with the server-metrics scraper off (`--server-metrics-interval 0`)
and on (`--scrape-interval`, default 1 s), interleaved `--repeat` times, in the usual table plus
the scraper's own CPU per request (run.json `server_metrics.cpu_s`; `run` CPU excludes it, `all`
includes it): the scrape must cost the sends nothing measurable.
Targets (2 cores, simulator on the same machine): at 100 QPS schedule delay p99 <= 5 ms, TTFT
error p99 <= 5 ms, CPU <= 5 ms per request; at 200 QPS schedule delay p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from steps.qwen_offline import build_qwen_tokenizer
from tests.fixtures.simulator import ROOT, start_simulator
from tests.helpers.text_table import print_table


def _children_cpu_s() -> float:
    """CPU of every terminated child (the load step's process tree, not the live simulator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int) -> float:
    """utime + stime of a running process (the simulator), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> str:
    return "{:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load_command(
    rate: float, args: argparse.Namespace, url: str, tok: Path, out: Path, workers: int
) -> list[str]:
    return [
        sys.executable, "-m", "steps.load", "--out", str(out), "--tokenizer-dir", str(tok),
        "--base-url", url, "--model-name", "Qwen/Qwen3-8B", "--rate", f"{rate:g}",
        "--duration", f"{args.duration:g}", "--num-workers", str(workers),
        "--input-tokens", "512", "--output-tokens", "128",
        "--warmup-requests", str(workers), "--log-level", "WARNING",
    ]  # fmt: skip


def _run_rate(
    rate: float,
    args: argparse.Namespace,
    url: str,
    tok: Path,
    work: Path,
    sim_pid: int,
    root: Path,
    pods: int = 1,
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One load run at `rate` from checkout `root`, as one pod or `pods` pods (merged)."""
    run_id = f"bench-{rate:g}-{pods}p-{len(list(work.glob('run-*')))}".replace(".", "_")
    out = work / f"run-{run_id}"
    load_before = _loadavg()
    cpu0 = _children_cpu_s()
    sim0 = _process_cpu_s(sim_pid)
    if pods == 1:
        command = [
            *_load_command(rate, args, url, tok, out, args.num_workers),
            *("--run-id", run_id, *flags),
        ]
        procs = [subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, text=True)]
        coordinator = None
        outs = [out]
    else:
        port = _free_port()
        coordinator = subprocess.Popen(
            [sys.executable, "-m", "steps.load", "coordinate", "--load-pods", str(pods),
             "--port", str(port), "--run-id", run_id, "--log-level", "WARNING"],
            cwd=root, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        outs = [out / f"pod{i}" for i in range(pods)]
        procs = []
        for i in range(pods):
            command = [
                *_load_command(rate, args, url, tok, outs[i], args.num_workers // pods),
                "--load-pods", str(pods), "--pod-index", str(i),
                "--coordinator", f"127.0.0.1:{port}",
            ]  # fmt: skip
            procs.append(subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, text=True))
    errors = [p.communicate()[1] for p in procs]
    if coordinator is not None:
        errors.append(coordinator.communicate()[1])
    cpu_all = _children_cpu_s() - cpu0
    sim_cpu = _process_cpu_s(sim_pid) - sim0
    load = f"{load_before} -> {_loadavg()}"
    if any(p.returncode not in (0, 1) for p in procs):
        raise SystemExit(f"load step failed at {rate} QPS:\n{errors[-1][-3000:]}")
    rows = [row for o in outs for row in pq.read_table(o / "records.parquet").to_pylist()]
    runs = [json.loads((o / "run.json").read_text()) for o in outs]
    return {
        "rows": rows, "run": runs[0], "runs": runs, "cpu_all": cpu_all, "sim_cpu": sim_cpu,
        "load": load, "run_id": run_id,
        "client_cpu_s": sum(r["client_cpu_s"] for r in runs),
    }  # fmt: skip


def _pct(values: Any, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _row(rate: float, result: dict[str, Any], truth: list[dict[str, Any]]) -> list[str]:
    rows, run_json = result["rows"], result["run"]
    ok = [r for r in rows if r["status"] == "ok"]
    by_id = {t["request_id"]: t for t in truth}
    stage = run_json["stages"][0]
    window_s = (stage["send_end_ns"] - stage["start_ns"]) / 1e9
    achieved = len(rows) / window_s
    arrivals = sorted(t["arrival_wall_ns"] for t in truth)
    server_rate = (len(arrivals) - 1) / ((arrivals[-1] - arrivals[0]) / 1e9)
    delay = np.array([(r["sent_ns"] - r["scheduled_ns"]) / 1e6 for r in rows if r["sent_ns"]])
    errors, send_lag, recv_lag, client_gaps, server_gaps = [], [], [], [], []
    wall0 = run_json["wall_start_ns"]
    for r in ok:
        t = by_id[f"{result['run_id']}-0-{r['request_index']}"]
        server_ttft = t["chunk_wall_ns"][0] - t["arrival_wall_ns"]
        errors.append((r["first_token_ns"] - r["sent_ns"] - server_ttft) / 1e6)
        # The TTFT error split in two on the shared wall clock: request write -> server parsed
        # it (includes the server's own read lag), first chunk written -> client read it.
        send_lag.append((t["arrival_wall_ns"] - wall0 - r["sent_ns"]) / 1e6)
        recv_lag.append((wall0 + r["first_token_ns"] - t["chunk_wall_ns"][0]) / 1e6)
        client_gaps.extend(np.diff(r["chunk_offsets_us"]) / 1e3)
        server_gaps.extend(np.diff(t["chunk_wall_ns"]) / 1e6)
    abs_err = np.abs(errors)
    n = len(rows)
    return [
        f"{rate:g}",
        f"{achieved:.2f} / {server_rate:.2f}",
        f"{n - len(ok)}",
        f"{_pct(delay, 50):.2f} / {_pct(delay, 99):.2f} / {delay.max():.1f}",
        f"{_pct(abs_err, 50):.2f} / {_pct(abs_err, 99):.2f}",
        f"{_pct(send_lag, 99):.2f} / {_pct(recv_lag, 99):.2f}",
        f"{_pct(client_gaps, 99):.1f} / {_pct(server_gaps, 99):.1f}",
        f"{result['client_cpu_s'] / n * 1e3:.2f} / {result['cpu_all'] / n * 1e3:.2f}",
        f"{result['sim_cpu'] / n * 1e3:.2f}",
        result["load"],
    ]


def _fanout_row(label: str, result: dict[str, Any], truth: list[dict[str, Any]]) -> list[str]:
    """What the merge must keep: indexes, schedule delay, the server's arrival gaps."""
    rows = result["rows"]
    indexes = sorted(r["request_index"] for r in rows)
    expected = list(range(len(truth)))
    whole = "0..n-1" if indexes == expected else f"GAPS/DUPLICATES ({len(indexes)} rows)"
    delay = np.array([(r["sent_ns"] - r["scheduled_ns"]) / 1e6 for r in rows if r["sent_ns"]])
    gaps = np.diff(sorted(t["arrival_wall_ns"] for t in truth)) / 1e6
    runs = result["runs"]
    offsets = "/".join(f"{r.get('clock_offset_ns', 0) / 1e6:+.3f}" for r in runs)
    firsts = []
    for run in runs:
        mine = [r for r in rows if r["request_index"] % len(runs) == run.get("pod_index", 0)]
        first = min(mine, key=lambda r: r["scheduled_ns"])
        firsts.append((first["sent_ns"] - first["scheduled_ns"]) / 1e6)
    n = len(rows)
    return [
        label,
        whole,
        f"{_pct(delay, 50):.2f} / {_pct(delay, 99):.2f}",
        f"{_pct(gaps, 1):.2f} / {_pct(gaps, 50):.2f} / {_pct(gaps, 99):.2f}",
        offsets,
        f"{max(firsts) - min(firsts):.3f}",
        f"{result['client_cpu_s'] / n * 1e3:.2f} / {result['cpu_all'] / n * 1e3:.2f}",
        result["load"],
    ]


def _truth_of(sim: Any, run_id: str) -> list[dict[str, Any]]:
    return [t for t in sim.truth() if (t["request_id"] or "").startswith(run_id + "-0-")]


def _scrape(args: argparse.Namespace, sim: Any, tok: Path, work: Path) -> list[list[str]]:
    """Scraper off against on, interleaved (off on, then on off, ...)."""
    cases = {"off": ("--server-metrics-interval", "0")}
    cases["on"] = ("--server-metrics-interval", f"{args.scrape_interval:g}")
    table = [[
        "QPS", "scrape", "achieved client/server", "failed", "sched delay p50/p99/max ms",
        "|TTFT err| p50/p99 ms", "p99 lag send/recv ms", "chunk gap p99 client/server ms",
        "CPU ms/req run/all", "sim CPU ms/req", "loadavg 1/5/15 before -> after",
        "scraper CPU ms/req (scrapes)",
    ]]  # fmt: skip
    for rate in (float(r) for r in args.rates.split(",")):
        for round_ in range(args.repeat):
            for name in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                sim.reset_truth()
                result = _run_rate(
                    rate, args, sim.base_url, tok, work, sim.pid, args.root, flags=cases[name]
                )
                row = _row(rate, result, _truth_of(sim, result["run_id"]))
                stats = result["run"].get("server_metrics") or {}
                scraper = (
                    f"{stats['cpu_s'] / len(result['rows']) * 1e3:.2f} ({stats['scrapes']})"
                    if "cpu_s" in stats
                    else "-"
                )
                table.append([row[0], name, *row[1:], scraper])
                print("  ".join(table[-1]), file=sys.stderr, flush=True)
    return table


def _fanout(args: argparse.Namespace, sim: Any, tok: Path, work: Path) -> list[list[str]]:
    """1 pod x W workers against W pods x 1 worker, interleaved."""
    pods = args.num_workers
    table = [[
        "case", "request indexes", "sched delay p50/p99 ms", "server arrival gap p1/p50/p99 ms",
        "clock offsets ms", "first-send spread ms", "CPU ms/req run/all",
        "loadavg 1/5/15 before -> after",
    ]]  # fmt: skip
    for rate in (float(r) for r in args.rates.split(",")):
        for round_ in range(args.repeat):
            cases = [1, pods] if round_ % 2 == 0 else [pods, 1]
            for n in cases:
                sim.reset_truth()
                result = _run_rate(rate, args, sim.base_url, tok, work, sim.pid, args.root, n)
                label = f"{rate:g} QPS, {n} pod(s) x {args.num_workers // n} worker(s)"
                table.append(_fanout_row(label, result, _truth_of(sim, result["run_id"])))
                print("  ".join(table[-1]), file=sys.stderr, flush=True)
    return table


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1,50,100,200")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--ttft-ms", type=float, default=50)
    parser.add_argument("--itl-ms", type=float, default=10)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run steps.load from")
    parser.add_argument("--roots", default="", help="A,B: checkouts to compare, interleaved")
    parser.add_argument("--repeat", type=int, default=1, help="runs per rate and root (or case)")
    parser.add_argument("--fanout", action="store_true", help="1 pod x W workers vs W pods x 1")
    parser.add_argument("--scrape", action="store_true", help="server-metrics scraper off vs on")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="s between scrapes")
    args = parser.parse_args()
    roots = [Path(r) for r in args.roots.split(",")] if args.roots else [args.root]
    with tempfile.TemporaryDirectory(prefix="bench-loadgen-") as tmp:
        work = Path(tmp)
        tok = build_qwen_tokenizer(work / "tokenizer")
        sim = start_simulator(
            ("--ttft-ms", f"{args.ttft_ms:g}", "--itl-ms", f"{args.itl_ms:g}",
             "--tokenizer", str(tok), "--max-num-seqs", "1024"),
            work / "simulator.log",
        )  # fmt: skip
        if args.fanout or args.scrape:
            try:
                print_table((_fanout if args.fanout else _scrape)(args, sim, tok, work))
            finally:
                sim.stop()
            return 0
        header = [
            "QPS", "root", "achieved client/server", "failed", "sched delay p50/p99/max ms",
            "|TTFT err| p50/p99 ms", "p99 lag send/recv ms", "chunk gap p99 client/server ms",
            "CPU ms/req run/all", "sim CPU ms/req", "loadavg 1/5/15 before -> after",
        ]  # fmt: skip
        table = [header]
        try:
            for rate in (float(r) for r in args.rates.split(",")):
                for round_ in range(args.repeat):
                    for root in roots if round_ % 2 == 0 else roots[::-1]:
                        sim.reset_truth()
                        result = _run_rate(rate, args, sim.base_url, tok, work, sim.pid, root)
                        row = _row(rate, result, _truth_of(sim, result["run_id"]))
                        table.append([row[0], root.name, *row[1:]])
                        print("  ".join(table[-1]), file=sys.stderr, flush=True)
        finally:
            sim.stop()
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
