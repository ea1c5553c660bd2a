"""Earlier runs of one scenario, model and target: summaries for the trend, rows for the baseline.

Runs live at `{root}/{scenario}/{model}/{run_id}/` in S3 (`S3History`) or in a
local directory with the same layout (`LocalHistory`, `--history-dir`). Run ids sort by time
(`YYYYMMDDTHHMMSSZ-<hex>`), so the history of a run is the greatest ids below its own whose
summary names the same base_url (one prefix may hold runs against several endpoints).

Everything read is bounded: at most MAX_CANDIDATES summaries are opened, an object is read only up
to its cap (MAX_SUMMARY_BYTES, MAX_RECORDS_BYTES) and at most `max_rows` rows of a run's
records.parquet are decoded. A missing, oversized or damaged object is one note in the report and
the run is left out (of the whole history for a summary, of the baseline for records), never a
crash: the regression check is worth less without it, the report is still worth having.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from steps.bounded_call import call_within
from steps.errors import BenchError, UsageError
from steps.report.upload import (
    S3Location,
    UploadError,
    endpoint_name,
    translate_s3_errors,
)
from steps.summary_model import Summary, parse_summary

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_RECORDS_BYTES",
    "MAX_ROWS_PER_RUN",
    "History",
    "HistoryError",
    "HistoryRun",
    "HistoryTimeout",
    "LocalHistory",
    "RunHistory",
    "S3History",
    "load_history",
    "read_rows",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Wall-clock bound of the whole S3 history lookup (a listing, summaries, ~10 records files).
HISTORY_DEADLINE_S = 60.0

#: Runs in the baseline window and the trend (`--history-window`): ten nights give the
#: between-run spread 9 degrees of freedom, and fit one S3 listing page.
DEFAULT_WINDOW = 10
#: How many older runs to open looking for ones with the same base_url before giving up; bounds
#: the S3 requests when a prefix holds many runs against other endpoints.
MAX_CANDIDATES = 50
#: A summary.json is a few kB; anything far larger is not one.
MAX_SUMMARY_BYTES = 4 << 20
#: A nightly baseline run's records.parquet is a few MB (300 requests, every chunk offset); a
#: long sweep's may be GBs: read whole only up to this, else the run stays out of the baseline.
MAX_RECORDS_BYTES = 128 << 20
#: Rows decoded per run: quantiles of 20 000 requests are as good as of all of them for a
#: comparison whose noise is between runs, and it keeps ten runs' rows within ~100 MB.
MAX_ROWS_PER_RUN = 20_000


class HistoryError(BenchError):
    """One stored object is missing, too large or damaged; the message names it (one line)."""


class HistoryTimeout(UploadError):
    """The S3 lookup's deadline passed: every further read would fail the same way, so stop."""


class RunHistory(Protocol):
    """Earlier runs of one scenario and model (S3 prefix or local directory)."""

    def run_ids(self) -> list[str]:
        """Ids of the runs stored for this scenario and model (any order)."""
        ...

    def read_file(self, run_id: str, name: str, max_bytes: int) -> bytes:
        """That run's file `name`; HistoryError when missing or over `max_bytes`."""
        ...

    def location(self, run_id: str) -> str:
        """Where that run lives (URI or path), for the report."""
        ...


@dataclass(frozen=True)
class HistoryRun:
    """One earlier run: its id, where it lives, its summary, its rows (None: not readable)."""

    run_id: str
    location: str
    summary: Summary
    rows: pa.Table | None


@dataclass(frozen=True)
class History:
    """The runs found (oldest first) and one note per object that could not be used."""

    runs: tuple[HistoryRun, ...] = ()
    notes: tuple[str, ...] = ()


def read_rows(source: bytes | Path, columns: Sequence[str], max_rows: int, what: str) -> pa.Table:
    """The first `max_rows` rows of a records.parquet, only `columns` (HistoryError, one line)."""
    try:
        handle = pa.BufferReader(source) if isinstance(source, bytes) else source
        parquet = pq.ParquetFile(handle)
        batches = []
        remaining = max_rows
        for batch in parquet.iter_batches(batch_size=min(max_rows, 8192), columns=list(columns)):
            batches.append(batch.slice(0, remaining))
            remaining -= batches[-1].num_rows
            if remaining <= 0:
                break
        schema = pa.schema([parquet.schema_arrow.field(name) for name in columns])
        return pa.Table.from_batches(batches, schema=schema)
    except (pa.ArrowException, OSError, KeyError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HistoryError(f"{what}: not a readable records.parquet ({first_line})") from None


def _summary(history: RunHistory, run_id: str) -> Summary:
    """A stored run's summary.json, parsed (HistoryError / UsageError / UploadError)."""
    text = history.read_file(run_id, "summary.json", MAX_SUMMARY_BYTES)
    where = f"{history.location(run_id)} summary.json"
    try:
        json.loads(text)
    except ValueError:
        raise HistoryError(f"{where}: not JSON (a half-written upload?)") from None
    return parse_summary(text, where)


def _rows(history: RunHistory, run_id: str, columns: Sequence[str], max_rows: int) -> pa.Table:
    """A stored run's rows, bounded in bytes and rows (HistoryError / UploadError)."""
    data = history.read_file(run_id, "records.parquet", MAX_RECORDS_BYTES)
    return read_rows(data, columns, max_rows, f"{history.location(run_id)} records.parquet")


def _candidates(history: RunHistory, run_id: str) -> list[str]:
    """Stored ids older than `run_id`, newest first, at most MAX_CANDIDATES."""
    return sorted((rid for rid in history.run_ids() if rid < run_id), reverse=True)[:MAX_CANDIDATES]


def load_history(
    history: RunHistory,
    run_id: str,
    base_url: str,
    window: int,
    columns: Sequence[str],
    max_rows: int = MAX_ROWS_PER_RUN,
) -> History:
    """The last `window` runs before `run_id` against `base_url`, oldest first, with notes.

    A failed listing or the lookup's deadline ends the search (what was found so far is kept);
    any one object that cannot be used costs its run, with a note saying which and why.
    """
    runs: list[HistoryRun] = []
    notes: list[str] = []
    try:
        for candidate in _candidates(history, run_id):
            if len(runs) == window:
                break
            try:
                summary = _summary(history, candidate)
            except HistoryTimeout:
                raise
            except (HistoryError, UsageError, UploadError) as exc:
                notes.append(f"run {candidate} skipped: {exc}")
                continue
            if summary.run.base_url != base_url:
                continue
            runs.append(_with_rows(history, candidate, summary, columns, max_rows, notes))
    except UploadError as exc:
        notes.append(f"History lookup failed ({exc}).")
    for note in notes:
        log.warning("%s", note)
    return History(tuple(reversed(runs)), tuple(notes))


def _with_rows(
    history: RunHistory,
    run_id: str,
    summary: Summary,
    columns: Sequence[str],
    max_rows: int,
    notes: list[str],
) -> HistoryRun:
    """The run with its rows; unreadable rows leave it in the trend, out of the baseline."""
    rows = None
    try:
        rows = _rows(history, run_id, columns, max_rows)
    except HistoryTimeout:
        raise
    except (HistoryError, UploadError) as exc:
        notes.append(f"run {run_id} left out of the baseline: {exc}")
    return HistoryRun(run_id, history.location(run_id), summary, rows)


class LocalHistory:
    """Runs kept on a filesystem with the S3 layout (`--history-dir`, or a synced bucket copy)."""

    def __init__(self, root: Path, scenario: str, model: str) -> None:
        self._base = root / scenario / model

    def run_ids(self) -> list[str]:
        """Subdirectories holding a summary.json."""
        if not self._base.is_dir():
            return []
        return [p.name for p in self._base.iterdir() if (p / "summary.json").is_file()]

    def read_file(self, run_id: str, name: str, max_bytes: int) -> bytes:
        """The file's bytes; HistoryError when missing, unreadable or over `max_bytes`."""
        path = self._base / run_id / name
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise HistoryError(f"{path}: {size} bytes, over the {max_bytes}-byte cap")
            return path.read_bytes()
        except OSError as exc:
            raise HistoryError(f"{path}: cannot read ({exc.strerror})") from None

    def location(self, run_id: str) -> str:
        """The run's directory."""
        return str(self._base / run_id)


class S3History:
    """Earlier runs under `s3://bucket/{prefix}/{scenario}/{model}/` (see `RunHistory`).

    Only botocore's retries here, not `with_backoff`: a failed lookup is noted in the report and
    the step goes on, and the upload that follows does the patient retrying. The lookup as a
    whole ends HISTORY_DEADLINE_S after its first request, whatever the endpoint does.
    """

    def __init__(self, client: Any, location: S3Location, base_prefix: str) -> None:
        self._client = client
        self._location = location
        self._base = base_prefix
        self._deadline: float | None = None

    def _bounded(self, what: str, call: Callable[[], T]) -> T:
        if self._deadline is None:
            self._deadline = time.monotonic() + HISTORY_DEADLINE_S
            log.info(
                "looking up earlier runs under %s at %s (at most %g s)",
                self._location.uri(self._base),
                endpoint_name(self._client),
                HISTORY_DEADLINE_S,
            )
        log.debug("history lookup: waiting for %s", what)
        done, result = call_within(self._deadline, call, "s3-history")
        if not done:
            raise HistoryTimeout(
                f"history lookup: no answer from {endpoint_name(self._client)} within "
                f"{HISTORY_DEADLINE_S:g} s (waiting for {what})"
            )
        return result  # type: ignore[return-value]

    def run_ids(self) -> list[str]:
        """Runs with a `{run_id}/summary.json` directly under the base prefix."""

        def listing() -> list[str]:
            ids = []
            paginator = self._client.get_paginator("list_objects_v2")
            with translate_s3_errors(self._client, self._location.bucket, "history lookup"):
                pages = paginator.paginate(Bucket=self._location.bucket, Prefix=self._base)
                for page in pages:
                    for item in page.get("Contents", []):
                        rest = str(item["Key"])[len(self._base) :]
                        run_id, _, name = rest.partition("/")
                        if name == "summary.json":
                            ids.append(run_id)
            return ids

        return self._bounded(f"the listing of {self._location.uri(self._base)}", listing)

    def read_file(self, run_id: str, name: str, max_bytes: int) -> bytes:
        """The run's object `name`, at most `max_bytes` fetched (one ranged GET).

        Missing or larger than `max_bytes`: HistoryError; S3 failures: UploadError.
        """
        key = f"{self._base}{run_id}/{name}"
        uri = self._location.uri(key)
        # One byte past the cap tells "exactly the cap" from "larger", without a HEAD first.
        data = self._bounded(uri, lambda: self._get_range(key, max_bytes + 1))
        if data is None:
            raise HistoryError(f"{uri}: no such object (or empty)")
        if len(data) > max_bytes:
            raise HistoryError(f"{uri}: larger than the {max_bytes}-byte cap; not read")
        return data

    def _get_range(self, key: str, length: int) -> bytes | None:
        """The first `length` bytes of `key`; None when there is no such (non-empty) object."""
        from botocore.exceptions import ClientError

        with translate_s3_errors(self._client, self._location.bucket, "history read"):
            try:
                response = self._client.get_object(
                    Bucket=self._location.bucket, Key=key, Range=f"bytes=0-{length - 1}"
                )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("NoSuchKey", "404", "InvalidRange"):
                    return None
                raise
            return bytes(response["Body"].read(length))

    def location(self, run_id: str) -> str:
        """`s3://bucket/.../{run_id}/`."""
        return self._location.uri(f"{self._base}{run_id}/")
