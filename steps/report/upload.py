"""S3: key layout, upload with retries, botocore error translation.

Key layout (documented in the README; earlier runs are read back by steps.report.history):

    s3://{bucket}/{prefix}/{scenario}/{model}/{run_id}/{file}

`model` is the served model name verbatim, so `Qwen/Qwen3-8B` becomes two key segments, as it
reads on the Hub. Credentials come from boto3's standard chain (env, IRSA web identity, instance
profile); nothing here reads or logs a key. Retries: botocore's "standard" mode retries throttling,
5xx and connection errors per call; on top, each object gets a bounded retry with exponential
backoff for connection errors, so an endpoint that restarts (a SeaweedFS/MinIO pod being
rescheduled) gets seconds, not milliseconds, to come back. Nothing is retried for a missing bucket
or rejected credentials: those need a human.

Bounds: every request has a connect and a read timeout (an endpoint that accepts TCP and never
answers kept the report silent for minutes), a read timeout is not retried on top of botocore's
own attempts, and the history lookup as a whole has a wall-clock deadline: a silent endpoint
costs the regression comparison, never the report. Each wait is logged first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from steps import s3_client
from steps.errors import UsageError
from steps.names import (
    check_bucket_name,
    check_endpoint_url,
    check_model_name,
    check_run_id,
    check_scenario_name,
)
from steps.s3_client import S3Error, endpoint_name, make_s3_client, translate_s3_errors

__all__ = [
    "S3Location",
    "UploadError",
    "check_endpoint",
    "check_run_names",
    "endpoint_name",
    "make_s3_client",
    "run_key_prefix",
    "translate_s3_errors",
    "upload_files",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Our attempts per object for connection errors, with backoff 0.5 s, 1 s, 2 s between them.
UPLOAD_ATTEMPTS = 4
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0

_CONTENT_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".parquet": "application/vnd.apache.parquet",
}


#: S3 failed (exit 1); the message names the bucket/endpoint and the likely fix.
UploadError = S3Error


@dataclass(frozen=True)
class S3Location:
    """Where runs are stored: a bucket and a key prefix without leading or trailing slash."""

    bucket: str
    prefix: str

    @classmethod
    def of(cls, bucket: str, path: str) -> S3Location:
        """`--bucket` and `--path` checked; a bad bucket name is a UsageError naming the flag."""
        try:
            check_bucket_name(bucket)
        except ValueError as exc:
            raise UsageError(f"--bucket: {exc}") from None
        return cls(bucket, path.strip("/"))

    def uri(self, key: str) -> str:
        """`s3://bucket/key`."""
        return f"s3://{self.bucket}/{key}"


def check_endpoint(url: str | None) -> str | None:
    """`--s3-endpoint-url`, checked before any work (botocore raises a traceback, and only once
    the client is built, for a value that is not an http(s) URL)."""
    if not url:
        return None
    try:
        return check_endpoint_url(url)
    except ValueError as exc:
        raise UsageError(f"--s3-endpoint-url: {exc}") from None


def check_run_names(scenario: str, model: str, run_id: str | None) -> None:
    """The names that become key segments and `--history-dir` paths (steps.names rules; no run
    id for the prefix of every run of a scenario and model)."""
    for key, value, check in (
        ("scenario", scenario, check_scenario_name),
        ("model", model, check_model_name),
        ("run_id", run_id, check_run_id),
    ):
        try:
            if value is not None:
                check(value)
        except ValueError as exc:
            raise UsageError(f"summary.json run.{key}: {exc}") from None


def run_key_prefix(location: S3Location, scenario: str, model: str, run_id: str | None) -> str:
    """`{prefix}/{scenario}/{model}/` (+ `{run_id}/` when given): where a run's files live."""
    check_run_names(scenario, model, run_id)
    parts = [location.prefix, scenario, model]
    if run_id is not None:
        parts.append(run_id)
    return "/".join(p for p in parts if p) + "/"


def _is_connection_error(exc: BaseException) -> bool:
    """Refused, reset or unreachable: worth waiting for a restarting endpoint. Not a read
    timeout: botocore already waited s3_client.READ_TIMEOUT_S on each of its attempts."""
    from botocore.exceptions import ConnectionError as BotoConnectionError

    return isinstance(exc, BotoConnectionError)


def with_backoff(
    call: Callable[[], T],
    attempts: int = UPLOAD_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying connection errors with exponential backoff; re-raises the last one."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not _is_connection_error(exc):
                raise
            delay = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
            log.warning(
                "S3 connection failed (attempt %d/%d); retrying in %.1fs", attempt, attempts, delay
            )
            sleep(delay)
    raise AssertionError("unreachable")  # the loop either returns or raises


def upload_files(
    client: Any,
    location: S3Location,
    key_prefix: str,
    files: Sequence[Path],
    root: Path,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Upload `files` (paths under `root`) to `key_prefix`; returns the keys written, in order."""
    keys = []
    total = sum(path.stat().st_size for path in files)
    log.info(
        "uploading %d files (%.1f MB) to %s at %s; each request waits at most %g s for an answer",
        len(files),
        total / 1e6,
        location.uri(key_prefix),
        endpoint_name(client),
        s3_client.READ_TIMEOUT_S,
    )
    for path in files:
        key = key_prefix + path.relative_to(root).as_posix()
        content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        log.debug("uploading %s (%d bytes)", key, path.stat().st_size)

        def put(path: Path = path, key: str = key, content_type: str = content_type) -> None:
            with path.open("rb") as body:
                client.put_object(
                    Bucket=location.bucket, Key=key, Body=body, ContentType=content_type
                )

        with translate_s3_errors(client, location.bucket, f"upload of {path.name}"):
            with_backoff(put, sleep=sleep)
        keys.append(key)
    log.info("uploaded %d files to %s", len(keys), location.uri(key_prefix))
    return keys
