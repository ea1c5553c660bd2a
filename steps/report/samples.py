"""The per-request series the plots need, read from records.parquet with bounded memory.

Exact percentiles come from summary.json (the aggregate step); these series only draw shapes, so
the expensive part, inter-token gaps (~128 per request), is read from an evenly strided subset of
requests (`MAX_ITL_REQUESTS`), and the other columns are streamed batch by batch. A 1M-request run
then costs a few scalar arrays of 1M floats, not 128M chunk offsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steps.errors import UsageError
from steps.record_metrics import as_float, chunk_gaps, latencies_ns, ok_rows, on_time_line
from steps.records import resolve_records_path

__all__ = ["COLUMNS", "MAX_ITL_REQUESTS", "Samples", "read_samples"]

#: The only record columns the report reads (steps/records.py names them).
COLUMNS = (
    "status",
    "wall_start_ns",
    "scheduled_ns",
    "sent_ns",
    "first_token_ns",
    "last_token_ns",
    "end_ns",
    "output_tokens",
    "chunk_offsets_us",
)

#: Requests whose chunk gaps feed the ITL CDF (every k-th request beyond this many).
MAX_ITL_REQUESTS = 20_000

_NS_PER_MS = 1e6
_NS_PER_S = 1e9


@dataclass(frozen=True)
class Samples:
    """Aligned per-request arrays (ok requests only unless noted); times in s since first send."""

    sent_s: np.ndarray  # send time of each ok request
    ttft_ms: np.ndarray
    e2e_ms: np.ndarray
    done_s: np.ndarray  # last token time of each ok request
    output_tokens: np.ndarray  # 0 where unknown
    delay_sent_s: np.ndarray  # send time of every request that was sent
    schedule_delay_ms: np.ndarray  # aligned with delay_sent_s
    itl_ms: np.ndarray  # pooled chunk gaps of the strided request subset
    #: The first send in s on the first shard's time line (ns since its t0 / 1e9): where the
    #: times above start, so other series on that clock (server metrics) line up with them.
    origin_s: float = 0.0


def read_samples(paths: Sequence[Path], max_itl_requests: int = MAX_ITL_REQUESTS) -> Samples:
    """Stream the needed columns of one or more record shards onto one time line (wall clock)."""
    files = []
    try:
        for path in paths:
            files.append(pq.ParquetFile(resolve_records_path(path)))
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"--records: cannot read {path} as Parquet ({exc})") from None
    for file, path in zip(files, paths, strict=True):
        missing = [c for c in COLUMNS if c not in file.schema_arrow.names]
        if missing:
            raise UsageError(f"--records: {path} lacks record columns {missing}")
    total_rows = sum(f.metadata.num_rows for f in files)
    stride = max(1, math.ceil(total_rows / max_itl_requests))

    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in Samples.__dataclass_fields__ if name != "origin_s"
    }
    anchor_ns: int | None = None
    row_base = 0
    for file in files:
        for batch in file.iter_batches(columns=list(COLUMNS), batch_size=65_536):
            if anchor_ns is None and len(batch):
                anchor_ns = int(batch.column("wall_start_ns")[0].as_py())
            times = on_time_line(batch, anchor_ns or 0)
            latency = latencies_ns(times, as_float(batch.column("output_tokens")))
            ok = ok_rows(batch.column("status"))
            sent_s = times["sent_ns"] / _NS_PER_S
            was_sent = ~np.isnan(sent_s)
            parts["delay_sent_s"].append(sent_s[was_sent])
            parts["schedule_delay_ms"].append(latency["schedule_delay"][was_sent] / _NS_PER_MS)
            parts["sent_s"].append(sent_s[ok])
            parts["ttft_ms"].append(latency["ttft"][ok] / _NS_PER_MS)
            parts["e2e_ms"].append(latency["e2e"][ok] / _NS_PER_MS)
            parts["done_s"].append(times["last_token_ns"][ok] / _NS_PER_S)
            tokens = np.nan_to_num(as_float(batch.column("output_tokens")))
            parts["output_tokens"].append(tokens[ok])
            strided = (np.arange(row_base, row_base + len(batch)) % stride == 0) & ok
            lists = batch.column("chunk_offsets_us").filter(pa.array(strided))
            parts["itl_ms"].append(chunk_gaps(lists) / 1e3)
            row_base += len(batch)

    arrays = {
        name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in parts.items()
    }
    starts = [a for a in (arrays["delay_sent_s"], arrays["sent_s"]) if len(a)]
    origin = min(float(np.nanmin(a)) for a in starts) if starts else 0.0
    for name in ("sent_s", "done_s", "delay_sent_s"):
        arrays[name] = arrays[name] - origin
    return Samples(**arrays, origin_s=origin)
