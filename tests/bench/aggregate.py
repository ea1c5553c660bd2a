"""Benchmark of the aggregate step (not a test): `python -m tests.bench.aggregate`.

Writes N synthetic records (default 1,000,000) with 128 chunk offsets each as Parquet with the
real RECORD_SCHEMA (untimed), then runs `python -m steps.aggregate` on it in a subprocess and
prints its wall time (interpreter start-up and imports included) and peak RSS (the child's own
ru_maxrss). Issue 3 targets on a 2-core machine: under 10 s and under 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steps.records import RECORD_SCHEMA

_WALL_START_NS = 1_795_000_000_000_000_000


def _list_array(values: np.ndarray, per_row: int, rows: int, kind: pa.DataType) -> pa.ListArray:
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * per_row)
    return pa.ListArray.from_arrays(offsets, pa.array(values.ravel(), type=kind))


def synthetic_records(rows: int, chunks: int, seed: int = 0) -> pa.Table:
    """`rows` requests at a constant rate, TTFT ~50 ms, ITL ~10 ms, 1% timeouts, 1 token/chunk."""
    rng = np.random.default_rng(seed)
    rate = rows / 300.0
    scheduled = (np.arange(rows, dtype=np.int64) * 1_000_000_000 // int(rate)).astype(np.int64)
    sent = scheduled + rng.integers(50_000, 2_000_000, rows)
    ttft_us = rng.integers(40_000, 60_000, rows, dtype=np.int32)
    offsets = rng.integers(9_000, 11_000, (rows, chunks), dtype=np.int32)
    offsets[:, 0] = ttft_us
    np.cumsum(offsets, axis=1, out=offsets)
    first = sent + offsets[:, 0].astype(np.int64) * 1000
    last = sent + offsets[:, -1].astype(np.int64) * 1000
    status = np.where(rng.random(rows) < 0.01, "timeout", "ok")
    columns = {
        "run_id": pa.array(["20261127T000000Z-abcdef"] * rows),
        "stage": pa.array(np.zeros(rows, np.int16)),
        "worker": pa.array((np.arange(rows) % 4).astype(np.int16)),
        "request_index": pa.array(np.arange(rows, dtype=np.int64)),
        "scheduled_ns": pa.array(scheduled),
        "sent_ns": pa.array(sent),
        "first_token_ns": pa.array(first),
        "last_token_ns": pa.array(last),
        "end_ns": pa.array(last + 200_000),
        "wall_start_ns": pa.array(np.full(rows, _WALL_START_NS, np.int64)),
        "requested_input_tokens": pa.array(np.full(rows, 512, np.int32)),
        "requested_output_tokens": pa.array(np.full(rows, chunks, np.int32)),
        "prompt_tokens": pa.array(np.full(rows, 512, np.int32)),
        "output_tokens": pa.array(np.full(rows, chunks, np.int32)),
        "prompt_tokens_source": pa.array(["server"] * rows),
        "output_tokens_source": pa.array(["server"] * rows),
        "chunk_offsets_us": _list_array(offsets, chunks, rows, pa.int32()),
        "chunk_tokens": _list_array(np.ones(rows * chunks, np.int16), chunks, rows, pa.int16()),
        "status": pa.array(status),
        "http_status": pa.array(np.full(rows, 200, np.int16)),
        "error": pa.nulls(rows, pa.string()),
    }
    return pa.table(columns, schema=RECORD_SCHEMA)


def _write_run(directory: Path, rows: int) -> None:
    run = {
        "run_id": "20261127T000000Z-abcdef",
        "wall_start_ns": _WALL_START_NS,
        "stages": [
            {
                "stage": 0,
                "rate": rows / 300.0,
                "duration_s": 300.0,
                "start_ns": 0,
                "send_end_ns": 300_000_000_000,
                "end_ns": 302_000_000_000,
            }
        ],
    }
    (directory / "run.json").write_text(json.dumps(run))


def _generate(records_dir: Path, rows: int, chunks: int) -> None:
    """Write the synthetic records.parquet + run.json (in its own process, see main)."""
    records_dir.mkdir(parents=True, exist_ok=True)
    # As steps/load/writer.py merges its parts: one write_table, zstd, default row groups.
    pq.write_table(
        synthetic_records(rows, chunks), records_dir / "records.parquet", compression="zstd"
    )
    _write_run(records_dir, rows)


def _aggregate_and_report_rss(records_dir: Path, out: Path) -> int:
    """Run the step in this process, then print its own CPU seconds and peak RSS (KiB)."""
    from steps.aggregate.__main__ import main as aggregate

    code = aggregate(["--records", str(records_dir), "--out", str(out), "--log-level", "WARNING"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{usage.ru_utime + usage.ru_stime:.2f} {usage.ru_maxrss}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, aggregate in a child process, print wall seconds and peak RSS.

    Generation runs in its own child too: Linux carries the spawning parent's peak RSS into a
    vfork()ed child's ru_maxrss, so a parent that had built 10^8 offsets would inflate it.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=128)
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--aggregate-from", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate_into:
        _generate(args.generate_into, args.rows, args.chunks)
        return 0
    if args.aggregate_from:
        return _aggregate_and_report_rss(args.aggregate_from, args.out)
    me = [sys.executable, "-m", "tests.bench.aggregate"]
    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as tmp:
        records_dir = Path(tmp) / "records"
        sizes = ["--rows", str(args.rows), "--chunks", str(args.chunks)]
        subprocess.run([*me, *sizes, "--generate-into", str(records_dir)], check=True)
        size_mb = (records_dir / "records.parquet").stat().st_size / 2**20
        print(f"records: {args.rows:,} rows x {args.chunks} chunks, {size_mb:.0f} MiB Parquet")
        command = [*me, "--aggregate-from", str(records_dir), "--out", str(Path(tmp) / "out")]
        started = time.perf_counter()
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        wall_s = time.perf_counter() - started
        if done.returncode != 0:
            print(f"aggregate failed ({done.returncode}): {done.stderr.strip()}", file=sys.stderr)
            return 1
        cpu_s, peak_kib = float(done.stdout.split()[-2]), int(done.stdout.split()[-1])
        print(f"aggregate wall: {wall_s:.2f} s (target < 10 s; includes interpreter start-up)")
        print(f"aggregate CPU: {cpu_s:.2f} s user+sys (shared machine: compare with wall)")
        print(f"aggregate peak RSS: {peak_kib / 2**20:.2f} GiB (target < 2 GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
