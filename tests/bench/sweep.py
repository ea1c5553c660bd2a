"""Benchmark of the sweep probe's estimators against simulators of known capacity (not a test).

    .venv/bin/python -m tests.bench.sweep [--max-num-seqs 4,8,16] [--trials 2]
        [--ttft-ms 50] [--itl-ms 10] [--output-tokens 32] [--burst-requests 400]

The true capacity: the simulator decodes at most `--max-num-seqs` sequences at once and a
request holds its slot from admission to its last token, TTFT + (n - 1) x ITL, plus up to one
ITL while its first token waits for the running batch's next step (steps/simulator/engine.py).
So capacity = max_num_seqs / (TTFT + (n - 1) x ITL) requests/s, at most one ITL per request
lower (shown as the range "true"). For each max_num_seqs and trial the benchmark starts a fresh
simulator and runs `python -m steps.load probe` once per estimator (interleaved), and prints
what each found and its error against the upper bound of the range.

Target: the ladder within 10 %; the burst port (inference-perf's estimator, 5 s burst, 0.5 s
in-flight samples, p95 of the falls) behaving like theirs. Its burst is `--burst-requests`
(inference-perf's default 2000 opens 2000 connections at once; 400 drain within its 60 s
timeout here at every setting).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from steps.qwen_offline import build_qwen_tokenizer
from tests.fixtures.simulator import ROOT, start_simulator
from tests.helpers.text_table import print_table


def _config(path: Path, base_url: str, args: argparse.Namespace) -> Path:
    n = args.output_tokens
    config = {
        "data": {
            "type": "random",
            "input_distribution": {"type": "fixed", "mean": 64, "min": 64, "max": 64},
            "output_distribution": {"type": "fixed", "mean": n, "min": n, "max": n},
        },
        "load": {
            "type": "constant",
            "stages": [],
            "num_workers": 2,
            "sweep": {"type": "geometric", "num_requests": args.burst_requests, "timeout": 60},
        },
        "server": {"base_url": base_url, "model_name": "Qwen/Qwen3-8B"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _probe(estimator: str, config: Path, tok: Path, out: Path) -> tuple[float, float]:
    """One probe run; returns (saturation rate found, wall seconds it took)."""
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "steps.load", "probe", "--config", str(config),
            "--out", str(out), "--tokenizer-dir", str(tok), "--sweep-estimator", estimator,
            "--log-level", "WARNING",
        ],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"probe {estimator} failed:\n{proc.stderr[-3000:]}")
    found = json.loads((out / "probe.json").read_text())["saturation_rate"]
    return float(found), time.monotonic() - started


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-num-seqs", default="4,8,16")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--ttft-ms", type=float, default=50)
    parser.add_argument("--itl-ms", type=float, default=10)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--burst-requests", type=int, default=400)
    args = parser.parse_args()
    service_s = (args.ttft_ms + (args.output_tokens - 1) * args.itl_ms) / 1e3
    header = ["max_num_seqs", "true req/s", "trial", "ladder (err, s)", "burst p95 (err, s)"]
    table = [header]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = Path(tmp)
        tok = build_qwen_tokenizer(work / "tokenizer")
        for seqs in (int(s) for s in args.max_num_seqs.split(",")):
            high = seqs / service_s
            low = seqs / (service_s + args.itl_ms / 1e3)
            for trial in range(args.trials):
                sim = start_simulator(
                    ("--ttft-ms", f"{args.ttft_ms:g}", "--itl-ms", f"{args.itl_ms:g}",
                     "--max-num-seqs", str(seqs), "--tokenizer", str(tok)),
                    work / f"sim-{seqs}-{trial}.log",
                )  # fmt: skip
                cells = []
                try:
                    config = _config(work / f"sweep-{seqs}-{trial}.yml", sim.base_url, args)
                    for estimator in ("ladder", "burst"):
                        out = work / f"{estimator}-{seqs}-{trial}"
                        found, took = _probe(estimator, config, tok, out)
                        cells.append(f"{found:.2f} ({found / high - 1:+.1%}, {took:.0f})")
                finally:
                    sim.stop()
                row = [str(seqs), f"{low:.2f}-{high:.2f}", str(trial + 1), *cells]
                table.append(row)
                print("  ".join(row), file=sys.stderr, flush=True)
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
