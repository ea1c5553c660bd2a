"""The real vLLM CPU tier's run-to-run spread (not a test): `python -m tests.bench.vllm_noise`.

What the simulator's noise model (`steps.simulator.latency.NoiseModel`, README "Simulator
noise") is calibrated against. Starts the tier's server with `tests/fixtures/vllm.py`'s functions
(its venv, the tiny Qwen3 model, readiness, the warm-up load run), then runs the load step
`--runs` times (default 5 x 20 s at 1 QPS, the baseline's 512 prompt / 128 output tokens) and
prints, per run and across runs:

- run to run: the coefficient of variation (std / mean, ddof=1) of each run's TTFT p50 and p99,
  ITL p50 and e2e p50, and the standard deviation of log(TTFT p50) across runs, which is what
  `--level-drift` is (a lognormal sigma of one factor per run);
- within a run: the standard deviation of log(TTFT) over its ok requests (`--ttft-jitter`), of
  log(TPOT) (each request's decode speed: `--itl-jitter`), and the share of requests with a chunk
  gap over STALL_FACTOR x the run's median gap and the median of those gaps (`--stall-rate`,
  `--stall-ms`; vLLM coalesces STREAM_INTERVAL tokens per chunk, so a gap is several tokens).

It takes minutes (the server's start-up ~90 s, then the runs): run it on a quiet machine, since
other load on the 2 cores is run-to-run spread too.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steps.record_metrics import (
    TIME_COLUMNS,
    as_float,
    chunk_gaps,
    latencies_ns,
    ok_rows,
    percentiles,
)
from steps.records import resolve_records_path
from tests.fixtures.vllm import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    REPO_ROOT,
    SERVED_MODEL_NAME,
    VllmServer,
    build_vllm_env,
    start_vllm,
    stop_vllm,
    wait_until_ready,
    warm_up,
    write_tiny_qwen3_model,
)
from workflows.local_process import free_port

#: A chunk gap this many times the run's median gap counts as a stall.
STALL_FACTOR = 5.0


@dataclass(frozen=True)
class RunFigures:
    """One run's headline percentiles (ms) and its within-run spread."""

    requests: int
    ok: int
    ttft_p50: float
    ttft_p99: float
    itl_p50: float
    e2e_p50: float
    ttft_log_sd: float  # sd of log(TTFT) over ok requests
    tpot_log_sd: float  # sd of log(TPOT): each request's decode speed
    stall_share: float  # requests with a gap > STALL_FACTOR x the median gap
    stall_ms: float | None  # median of those gaps


def _log_sd(values: np.ndarray) -> float:
    values = values[~np.isnan(values) & (values > 0)]
    return float(np.log(values).std(ddof=1)) if len(values) > 1 else math.nan


def _stalls(offsets: pa.ListArray, n_ok: int, median_gap_us: float) -> tuple[float, float | None]:
    """Share of requests with a gap over STALL_FACTOR x the median, and those gaps' median (ms)."""
    stalled, long_gaps = 0, []
    bound = int(STALL_FACTOR * median_gap_us)
    for row in offsets.to_pylist():
        gaps = np.diff(np.asarray(row or [], dtype=np.int64))
        over = gaps[gaps > bound]
        stalled += bool(len(over))
        long_gaps.extend(over.tolist())
    share = stalled / n_ok if n_ok else math.nan
    return share, (statistics.median(long_gaps) / 1e3 if long_gaps else None)


def run_figures(records: Path) -> RunFigures:
    """The figures of one load run's records.parquet (definitions: steps.record_metrics)."""
    table = pq.read_table(records)
    ok = ok_rows(table.column("status"))
    times = {name: as_float(table.column(name)) for name in TIME_COLUMNS}
    latency = latencies_ns(times, as_float(table.column("output_tokens")))
    ttft, e2e, tpot = (latency[name][ok] / 1e6 for name in ("ttft", "e2e", "tpot"))
    offsets = table.column("chunk_offsets_us").combine_chunks().filter(ok)
    gaps_ms = chunk_gaps(offsets) / 1e3
    ttft_p50, ttft_p99 = percentiles(ttft[~np.isnan(ttft)], [50, 99])
    (itl_p50,) = percentiles(gaps_ms, [50])
    (e2e_p50,) = percentiles(e2e[~np.isnan(e2e)], [50])
    share, stall_ms = _stalls(offsets, int(ok.sum()), float(itl_p50) * 1e3)
    return RunFigures(
        requests=table.num_rows,
        ok=int(ok.sum()),
        ttft_p50=float(ttft_p50),
        ttft_p99=float(ttft_p99),
        itl_p50=float(itl_p50),
        e2e_p50=float(e2e_p50),
        ttft_log_sd=_log_sd(ttft),
        tpot_log_sd=_log_sd(tpot),
        stall_share=share,
        stall_ms=stall_ms,
    )


def _load(server: VllmServer, out: Path, args: argparse.Namespace, seed: int) -> Path:
    """One run of `python -m steps.load` against the server; its records.parquet."""
    command = [
        sys.executable, "-m", "steps.load",
        "--out", str(out),
        "--base-url", server.base_url,
        "--model-name", server.model_name,
        "--tokenizer-dir", str(server.tokenizer_dir),
        "--api-type", "completion",
        "--rate", str(args.rate),
        "--duration", str(args.duration),
        "--input-tokens", str(args.input_tokens),
        "--output-tokens", str(args.output_tokens),
        "--num-workers", "2",
        "--seed", str(seed),
    ]  # fmt: skip
    with (out.parent / f"{out.name}.log").open("w") as log:
        code = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=log, check=False)
    if code.returncode not in (0, 1):  # 1: some requests failed, the records are complete
        raise RuntimeError(f"load run {out.name} exited {code.returncode}; see {log.name}")
    return resolve_records_path(out)


def _cv(values: Sequence[float]) -> str:
    if len(values) < 2:
        return "-"
    return f"{statistics.stdev(values) / statistics.mean(values):.1%}"


def _report(runs: Sequence[RunFigures]) -> None:
    print(f"{'run':>3} {'ok/req':>8} {'TTFT p50':>9} {'p99':>8} {'ITL p50':>8} {'e2e p50':>8} "
          f"{'sd logTTFT':>10} {'sd logTPOT':>10} {'stalled':>8} {'stall ms':>8}")  # fmt: skip
    for i, r in enumerate(runs):
        stall = "-" if r.stall_ms is None else f"{r.stall_ms:.1f}"
        print(f"{i:>3} {r.ok:>4}/{r.requests:<3} {r.ttft_p50:>9.2f} {r.ttft_p99:>8.2f} "
              f"{r.itl_p50:>8.2f} {r.e2e_p50:>8.1f} {r.ttft_log_sd:>10.3f} {r.tpot_log_sd:>10.3f} "
              f"{r.stall_share:>8.2%} {stall:>8}")  # fmt: skip
    drift = statistics.stdev(math.log(r.ttft_p50) for r in runs) if len(runs) > 1 else math.nan
    print(
        f"run to run (CV): TTFT p50 {_cv([r.ttft_p50 for r in runs])}, "
        f"TTFT p99 {_cv([r.ttft_p99 for r in runs])}, ITL p50 {_cv([r.itl_p50 for r in runs])}, "
        f"e2e p50 {_cv([r.e2e_p50 for r in runs])}; sd of log(TTFT p50) {drift:.3f} "
        "(--level-drift)"
    )
    print(
        "within a run (mean over runs): "
        f"sd log(TTFT) {statistics.mean(r.ttft_log_sd for r in runs):.3f} (--ttft-jitter), "
        f"sd log(TPOT) {statistics.mean(r.tpot_log_sd for r in runs):.3f} (--itl-jitter), "
        f"stalled {statistics.mean(r.stall_share for r in runs):.2%} (--stall-rate)"
    )


def _start(workdir: Path) -> VllmServer:
    """The tier's server, ready and warmed up as the vllm test tier has it."""
    python = build_vllm_env()
    model_dir = write_tiny_qwen3_model(workdir / "tiny-qwen3")
    port = free_port()
    log_path = workdir / "server.log"
    process = start_vllm(python, model_dir, log_path, port)
    server = VllmServer(
        f"http://127.0.0.1:{port}", SERVED_MODEL_NAME, model_dir, model_dir, log_path, process
    )
    try:
        wait_until_ready(server)
        warm_up(server)
    except BaseException:
        stop_vllm(process)
        raise
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server, run the load step --runs times, print the spread."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--rate", type=float, default=1.0, help="requests per second")
    parser.add_argument("--input-tokens", type=int, default=INPUT_TOKENS)
    parser.add_argument("--output-tokens", type=int, default=OUTPUT_TOKENS)
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vllm-noise-") as tmp:
        workdir = Path(tmp)
        started = time.monotonic()
        server = _start(workdir)
        print(f"server ready and warmed up in {time.monotonic() - started:.0f} s")
        try:
            runs = []
            for i in range(args.runs):
                if i:
                    time.sleep(args.pause)
                records = _load(server, workdir / f"run-{i}", args, seed=i)
                runs.append(run_figures(records))
        finally:
            stop_vllm(server.process)
    print(f"{args.runs} runs x {args.duration:g} s at {args.rate:g} QPS, "
          f"{args.input_tokens}/{args.output_tokens} tokens")  # fmt: skip
    _report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
