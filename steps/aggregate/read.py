"""Input side of aggregate: find the shards, check them against RECORD_SCHEMA, read what is needed.

A shard is one load pod's output: `records.parquet` plus, when present, `run.json` beside it.
Several shards are one run only when they share its run id and split its requests, as a load
spread over several pods will write them (steps/CONTRACTS.md); today's load writes one per run.
Each shard's times are ns since its own t0; `steps.record_metrics.on_time_line` puts every
shard on one time line whose origin is the earliest shard's t0. Only the columns the metrics use
are read, and the two list columns (10^8 items in a long run) are read separately from the
scalar ones so that they are never all in memory at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError

from steps.errors import UsageError
from steps.record_metrics import TIME_COLUMNS, as_float, on_time_line
from steps.records import OPTIONAL_COLUMNS, RECORD_SCHEMA, RUN_FILE, resolve_records_path

__all__ = [
    "RunInfo",
    "Shard",
    "StageRun",
    "check_one_run",
    "check_unique_requests",
    "iter_batches",
    "load_shards",
    "read_requests",
]

_NUMBER_COLUMNS = ("prompt_tokens", "output_tokens", "http_status")
_TEXT_COLUMNS = ("status", "prompt_tokens_source", "output_tokens_source", "error")
_SCALAR_COLUMNS = (
    "stage",
    "request_index",
    "wall_start_ns",
    *TIME_COLUMNS,
    *_NUMBER_COLUMNS,
    *_TEXT_COLUMNS,
)
_LIST_COLUMNS = ("chunk_offsets_us", "chunk_tokens")
#: Rows per batch of list columns: ~4 M items, so per-batch temporaries stay at tens of MB.
_BATCH_ROWS = 32_768


class StageRun(BaseModel):
    """One stage of run.json: its rate and window (ns since that shard's t0); a closed-loop
    stage has no rate nor duration (its users send until it ends)."""

    model_config = ConfigDict(extra="ignore")

    stage: int
    rate: float | None
    duration_s: float | None
    concurrency_level: int | None = None
    start_ns: int
    send_end_ns: int
    end_ns: int


class RunInfo(BaseModel):
    """The part of run.json that aggregation relies on; other keys pass through untouched."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    wall_start_ns: int
    stages: list[StageRun]


@dataclass(frozen=True)
class Shard:
    """One records file, its row count and its run.json (None when there is none beside it)."""

    records_path: Path
    rows: int
    wall_start_ns: int
    run: RunInfo | None
    run_meta: dict[str, Any] | None


def _check_schema(records: Path) -> pq.FileMetaData:
    """Fail with the file and column when a needed column is missing or has another type."""
    try:
        metadata = pq.read_metadata(records)
        schema = metadata.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"records file '{records}' is not readable Parquet: {first_line}") from exc
    present_optional = [name for name in OPTIONAL_COLUMNS if name in schema.names]
    for name in (*_SCALAR_COLUMNS, *_LIST_COLUMNS, *present_optional):
        expected = RECORD_SCHEMA.field(name).type
        if name not in schema.names:
            raise UsageError(
                f"records file '{records}': column '{name}' is missing (expected {expected}, "
                "see steps.records.RECORD_SCHEMA)"
            )
        found = schema.field(name).type
        if found != expected:
            raise UsageError(
                f"records file '{records}': column '{name}' has type {found}, expected {expected} "
                "(steps.records.RECORD_SCHEMA)"
            )
    return metadata


def _read_run(run_path: Path) -> tuple[RunInfo, dict[str, Any]]:
    """run.json validated; an unreadable, non-UTF-8 or invalid file is a UsageError naming it."""
    try:
        raw = json.loads(run_path.read_text())
        run = RunInfo.model_validate(raw)
    except OSError as exc:
        raise UsageError(f"run file '{run_path}' is not readable: {exc.strerror or exc}") from exc
    except ValidationError as exc:  # before ValueError: pydantic's error is one too
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        raise UsageError(f"run file '{run_path}': {where}: {error['msg']}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UsageError(f"run file '{run_path}' is not valid JSON: {exc}") from exc
    return run, {key: value for key, value in raw.items() if key != "config"}


def _first_wall_start(records: Path, rows: int) -> int:
    """wall_start_ns of a shard without run.json: the records' own anchor (same for every row)."""
    if rows == 0:
        return 0
    column = pq.read_table(records, columns=["wall_start_ns"]).column("wall_start_ns")
    return int(np.min(column.to_numpy()))


def load_shards(paths: Sequence[Path]) -> list[Shard]:
    """Resolve and validate every records path (file or directory) and its run.json."""
    shards = []
    for path in paths:
        records = resolve_records_path(path)
        metadata = _check_schema(records)
        run_path = records.parent / RUN_FILE
        run, meta = _read_run(run_path) if run_path.is_file() else (None, None)
        wall = run.wall_start_ns if run else _first_wall_start(records, metadata.num_rows)
        shards.append(Shard(records, metadata.num_rows, wall, run, meta))
    return shards


def _run_ids(shard: Shard) -> set[str]:
    """Every run id a shard names: its run.json's and those in its records."""
    table = pq.read_table(shard.records_path, columns=["run_id"], read_dictionary=["run_id"])
    ids = {str(v) for v in pc.unique(table.column("run_id")).to_pylist()}
    return ids | ({shard.run.run_id} if shard.run else set())


def check_one_run(shards: Sequence[Shard]) -> None:
    """Refuse shards of different runs: their sum would describe no run at all.

    Shards of one run (a load spread over several pods) share its run id, which is what makes
    them one run; two runs of today's load step never do.
    """
    found: dict[str, Path] = {}
    for shard in shards:
        for run_id in sorted(_run_ids(shard)):
            found.setdefault(run_id, shard.records_path)
    if len(found) > 1:
        listed = ", ".join(f"{run_id} ({path})" for run_id, path in found.items())
        raise UsageError(
            f"--records: the records belong to different runs: {listed}; aggregate one run at a "
            "time (shards of one run share its run_id)"
        )


def check_unique_requests(requests: pd.DataFrame) -> None:
    """Refuse a request recorded twice: (stage, request_index) names one scheduled request."""
    duplicated = requests.duplicated(["stage", "request_index"], keep=False)
    if duplicated.any():
        first = requests[duplicated].iloc[0]
        count = int(duplicated.sum())
        raise UsageError(
            f"--records: {count} rows share their (stage, request_index) with another, e.g. "
            f"stage {int(first['stage'])} request_index {int(first['request_index'])}: the same "
            "records given twice, or shards of one run that overlap"
        )


def read_requests(shards: Sequence[Shard], origin_ns: int) -> pd.DataFrame:
    """One row per request of every shard, in shard order; times in ns since epoch `origin_ns`.

    A column of `OPTIONAL_COLUMNS` that a shard lacks (written before it existed) is all NaN.
    """
    frames = []
    for index, shard in enumerate(shards):
        names = pq.read_schema(shard.records_path).names
        optional = [name for name in OPTIONAL_COLUMNS if name in names]
        table = pq.read_table(
            shard.records_path,
            columns=[*_SCALAR_COLUMNS, *optional],
            read_dictionary=list(_TEXT_COLUMNS),
        )
        data: dict[str, Any] = {
            "shard": np.full(table.num_rows, index, dtype=np.int32),
            "stage": table.column("stage").to_numpy().astype(np.int64),
            "request_index": table.column("request_index").to_numpy(),
        }
        data |= on_time_line(table, origin_ns)
        for name in _NUMBER_COLUMNS:
            data[name] = as_float(table.column(name))
        for name in OPTIONAL_COLUMNS:
            data[name] = (
                as_float(table.column(name))
                if name in optional
                else np.full(table.num_rows, np.nan, dtype=np.float64)
            )
        for name in _TEXT_COLUMNS:
            data[name] = table.column(name).to_pandas()
        frames.append(pd.DataFrame(data))
    return pd.concat(frames, ignore_index=True)


def iter_batches(shards: Sequence[Shard], columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """`columns` of every shard, in row order, in bounded batches (for the list columns).

    Batches, not read_table: decoding one 10^8-item list column whole is several times slower
    than in batches, and a batch at a time keeps the list columns out of memory.
    """
    for shard in shards:
        parquet = pq.ParquetFile(shard.records_path)
        yield from parquet.iter_batches(batch_size=_BATCH_ROWS, columns=list(columns))
