"""Records, run.json and aggregate runs for the aggregate tests: exactly known requests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from steps.aggregate.__main__ import main
from steps.records import RECORD_SCHEMA

__all__ = ["MS", "WALL_NS", "S", "aggregate", "record_row", "stage_window", "write_shard"]

WALL_NS = 1_790_000_000_000_000_000
MS = 1_000_000
S = 1_000_000_000


def record_row(
    index: int,
    *,
    stage: int = 0,
    scheduled_ns: int | None = None,
    delay_ms: float = 0.5,
    ttft_ms: float = 50.0,
    gaps_ms: tuple[float, ...] = (10.0,),
    status: str = "ok",
    output_tokens: int | None = None,
    chunk_tokens: list[int] | None = None,
    prompt_tokens: int = 512,
    http_status: int | None = 200,
    error: str | None = None,
    wall_start_ns: int = WALL_NS,
) -> dict[str, Any]:
    """One record with RECORD_SCHEMA's columns (request `index`, sent at index s + delay);
    chunk offsets from TTFT and the gaps; a failed row reaches its tokens only when it has gaps."""
    scheduled = index * S if scheduled_ns is None else scheduled_ns
    sent = scheduled + round(delay_ms * MS)
    offsets_us = [round(ttft_ms * 1000)]
    for gap in gaps_ms:
        offsets_us.append(offsets_us[-1] + round(gap * 1000))
    reached = status == "ok" or bool(gaps_ms)
    n_out = len(offsets_us) if output_tokens is None else output_tokens
    return {
        "run_id": "20261127T000000Z-abcdef",
        "stage": stage,
        "worker": index % 4,
        "request_index": index,
        "scheduled_ns": scheduled,
        "sent_ns": sent,
        "first_token_ns": sent + offsets_us[0] * 1000 if reached else None,
        "last_token_ns": sent + offsets_us[-1] * 1000 if reached else None,
        "end_ns": sent + offsets_us[-1] * 1000 + 100_000,
        "wall_start_ns": wall_start_ns,
        "requested_input_tokens": 512,
        "requested_output_tokens": n_out,
        "prompt_tokens": prompt_tokens,
        "output_tokens": n_out if status == "ok" else None,
        "prompt_tokens_source": "server",
        "output_tokens_source": "server" if status == "ok" else None,
        "chunk_offsets_us": offsets_us if reached else [],
        "chunk_tokens": chunk_tokens,
        "status": status,
        "http_status": http_status,
        "error": error,
    }


def write_shard(
    directory: Path,
    rows: list[dict[str, Any]],
    stages: list[dict[str, Any]] | None = None,
    wall_start_ns: int = WALL_NS,
) -> Path:
    """records.parquet of `rows` in `directory`, plus a run.json when `stages` are given."""
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA), directory / "records.parquet")
    if stages is not None:
        run = {
            "run_id": "20261127T000000Z-abcdef",
            "scenario": "baseline",
            "wall_start_ns": wall_start_ns,
            "stages": stages,
            "config": {"server": {"base_url": "http://x"}},
        }
        (directory / "run.json").write_text(json.dumps(run))
    return directory


def stage_window(
    stage: int, rate: float, start_s: float, send_end_s: float, end_s: float
) -> dict[str, Any]:
    """One run.json stage: `rate`/s, its window given in seconds since t0."""
    return {
        "stage": stage,
        "rate": rate,
        "duration_s": send_end_s - start_s,
        "start_ns": round(start_s * S),
        "send_end_ns": round(send_end_s * S),
        "end_ns": round(end_s * S),
    }


def aggregate(out: Path, *records: Path, flags: Sequence[str] = ()) -> dict[str, Any]:
    """Run the aggregate CLI on `records` into `out` (it must exit 0); its summary.json."""
    assert main(["--records", *map(str, records), "--out", str(out), *flags]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary
