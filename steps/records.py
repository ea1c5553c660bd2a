"""The per-request record: the contract between the load step and everything after it.

One row per request, failed and timed-out ones included (nothing measured is dropped).
Clock: every `*_ns` time is nanoseconds since the run's start `t0` on `time.monotonic_ns()`,
which is one clock for all worker processes on a host; `wall_start_ns` is `time.time_ns()` at
`t0`, so shards written by several pods can be put on one time line. A time is null where the
request never reached that point (no first token on an HTTP error, say), never 0.

Column names are a public contract (aggregate, report, users' notebooks): add columns freely,
never rename or retype these.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from steps.errors import UsageError

__all__ = [
    "INT_BOUNDS",
    "OPTIONAL_COLUMNS",
    "PARTS_DIR",
    "RECORDS_FILE",
    "RECORD_SCHEMA",
    "RUN_FILE",
    "SATURATION_DELAY_MS",
    "STATUSES",
    "TOKEN_SOURCES",
    "merge_command",
    "out_of_range",
    "resolve_records_path",
]

#: Schedule delay (sent_ns - scheduled_ns) p99 above which the load generator, not the server,
#: shaped the latencies: the guide's "schedule delay should stay < 10 ms" rule. The load summary,
#: the aggregate flag, the report's default SLA and its plot all use this one number.
SATURATION_DELAY_MS = 10.0

#: The load step's output file name inside its --out directory.
RECORDS_FILE = "records.parquet"

#: The load step's run description beside RECORDS_FILE (steps/CONTRACTS.md).
RUN_FILE = "run.json"

#: Where the load step's workers write part files while it runs; merged into RECORDS_FILE at the
#: end. Parts left here mean the step never got to merge them (see `merge_command`).
PARTS_DIR = "records.parts"

#: `status` values. ok: the response completed; http_error: non-2xx answer; timeout: the request
#: exceeded load.request_timeout or the drain window; connect_error: no connection; protocol_error:
#: malformed SSE/JSON or a stream cut mid-way; cancelled: the run was stopped while in flight.
STATUSES = ("ok", "http_error", "timeout", "connect_error", "protocol_error", "cancelled")

#: Where a token count came from. server: the response's `usage`; chunks: summed per-chunk
#: `token_ids` from the stream; client: the client tokenizer re-encoding the text (fallback only).
TOKEN_SOURCES = ("server", "chunks", "client")

RECORD_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("stage", pa.int16(), nullable=False),
        pa.field("worker", pa.int16(), nullable=False),
        pa.field("request_index", pa.int64(), nullable=False),
        # Times, ns since t0 (monotonic). scheduled: the intended send deadline t0 + offset;
        # sent: just before the request bytes were handed to the connection; first/last_token:
        # arrival of the first/last chunk carrying content; end: response fully read or failed.
        pa.field("scheduled_ns", pa.int64(), nullable=False),
        pa.field("sent_ns", pa.int64()),
        pa.field("first_token_ns", pa.int64()),
        pa.field("last_token_ns", pa.int64()),
        pa.field("end_ns", pa.int64()),
        pa.field("wall_start_ns", pa.int64(), nullable=False),
        pa.field("requested_input_tokens", pa.int32(), nullable=False),
        pa.field("requested_output_tokens", pa.int32(), nullable=False),
        pa.field("prompt_tokens", pa.int32()),
        pa.field("output_tokens", pa.int32()),
        pa.field("prompt_tokens_source", pa.string()),
        pa.field("output_tokens_source", pa.string()),
        # Arrival of each content chunk, µs after sent_ns (int32 holds 35.8 minutes, which is
        # why load.request_timeout is capped at steps.shared.MAX_REQUEST_SECONDS).
        pa.field("chunk_offsets_us", pa.list_(pa.int32())),
        # Tokens carried by each content chunk, aligned with chunk_offsets_us; null when the
        # server did not say (no per-chunk token_ids).
        pa.field("chunk_tokens", pa.list_(pa.int16())),
        pa.field("status", pa.string(), nullable=False),
        pa.field("http_status", pa.int16()),
        pa.field("error", pa.string()),
        # usage.prompt_tokens_details.cached_tokens: prompt tokens the server took from its prefix
        # cache (they flatter TTFT: real prompts repeated across nightly runs hit it). Null when
        # the server did not say (vLLM says so only with --enable-prompt-tokens-details).
        pa.field("cached_tokens", pa.int32()),
    ]
)

#: Columns added after the first release: a records file written before them lacks them, and
#: readers take such a column as all null.
OPTIONAL_COLUMNS = ("cached_tokens",)


def _int_type(field: pa.Field) -> pa.DataType | None:
    """The integer type of a column or of a list column's items; None for other columns."""
    kind = field.type.value_type if pa.types.is_list(field.type) else field.type
    return kind if pa.types.is_integer(kind) else None


#: Inclusive (min, max) of every integer column, list items included, from RECORD_SCHEMA's types.
#: Values the server controls (usage counts, the HTTP status, per-chunk tokens) are checked
#: against these per record: one out-of-range value must fail its own request, not the
#: Arrow conversion of a whole batch of good ones.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    f.name: (-(1 << (kind.bit_width - 1)), (1 << (kind.bit_width - 1)) - 1)
    for f in RECORD_SCHEMA
    if (kind := _int_type(f)) is not None
}


def out_of_range(column: str, value: int) -> str | None:
    """Why `value` cannot be stored in `column` (an error text), or None when it fits."""
    low, high = INT_BOUNDS[column]
    if low <= value <= high:
        return None
    return f"{column} value {value} is outside the column's range [{low}, {high}]"


def merge_command(out_dir: Path) -> str:
    """The command that merges orphaned part files of a load run in `out_dir` (steps.load)."""
    return f"python -m steps.load merge --out {out_dir}"


def resolve_records_path(path: Path) -> Path:
    """A records file, or the load step's --out directory holding one (both are accepted)."""
    if path.is_dir():
        records = path / RECORDS_FILE
        if not records.is_file() and any((path / PARTS_DIR).glob("*.parquet")):
            raise UsageError(
                f"records directory '{path}' holds no {RECORDS_FILE} but unmerged parts in "
                f"{PARTS_DIR}/ (the load step did not finish): recover them with "
                f"`{merge_command(path)}`, then aggregate that directory"
            )
        if not records.is_file():
            raise UsageError(
                f"records directory '{path}' holds no {RECORDS_FILE}; "
                "pass the load step's --out DIR"
            )
        return records
    if not path.is_file():
        raise UsageError(
            f"records path '{path}' does not exist; pass a {RECORDS_FILE} or its directory"
        )
    return path
