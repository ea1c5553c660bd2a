"""Where a run's results go and where its earlier runs are: S3 (`--bucket`) or `--history-dir`.

`open_storage` builds the S3 client and the run history once; a client that cannot be built is
kept as an error and raised only at upload, after the local results are complete (exit 1 with
everything in `--out`). `upload_results` sends `--out` under the run's key prefix
(`steps.report.upload` owns the key layout, retries and error translation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.errors import UsageError
from steps.outputs import write_outputs
from steps.report.bundle import bundle_files
from steps.report.history import LocalHistory, RunHistory, S3History
from steps.report.upload import (
    S3Location,
    UploadError,
    check_run_names,
    make_s3_client,
    run_key_prefix,
    upload_files,
)
from steps.summary_model import RunSection

__all__ = ["RunIdentity", "Storage", "open_storage", "run_identity", "upload_results"]


@dataclass(frozen=True)
class RunIdentity:
    """The names that place a run in the history: S3 keys and --history-dir paths."""

    run_id: str
    scenario: str
    model: str
    base_url: str


def run_identity(run: RunSection) -> RunIdentity:
    """run.{run_id, scenario, model, base_url}, present and safe as key segments (UsageError)."""
    named = (
        ("run_id", run.run_id),
        ("scenario", run.scenario),
        ("model", run.model),
        ("base_url", run.base_url),
    )
    for key, value in named:
        if not value:
            raise UsageError(f"--summary: summary.json run.{key} is missing or not a string")
    identity = RunIdentity(*(value or "" for _, value in named))
    # They become S3 keys and --history-dir paths: no '..', no absolute path, before any work.
    check_run_names(identity.scenario, identity.model, identity.run_id)
    return identity


@dataclass(frozen=True)
class Storage:
    """Where the results go (S3, or only --out) and where earlier runs are looked up."""

    location: S3Location | None = None
    key_prefix: str = ""
    client: Any = None
    #: A client that could not be built: raised after the local results are written.
    client_error: UploadError | None = None
    history: RunHistory | None = None

    def report_uri(self, out: Path) -> str:
        """Where the report is read: its S3 URI when uploaded, else the local file."""
        if self.location is None:
            return str((out / "report.html").resolve())
        return self.location.uri(self.key_prefix + "report.html")

    def run_location(self, out: Path) -> str:
        """Where this run's results are: its S3 prefix when uploaded, else --out."""
        if self.location is None:
            return str(out.resolve())
        return self.location.uri(self.key_prefix)


def open_storage(
    location: S3Location | None,
    endpoint_url: str | None,
    identity: RunIdentity,
    history_dir: Path | None,
) -> Storage:
    """The S3 client and history for `location`, or the --history-dir history without one."""
    if location is None:
        if history_dir is None:
            return Storage()
        return Storage(history=LocalHistory(history_dir, identity.scenario, identity.model))
    base = run_key_prefix(location, identity.scenario, identity.model, None)
    key_prefix = run_key_prefix(location, identity.scenario, identity.model, identity.run_id)
    try:
        client = make_s3_client(endpoint_url)
    except UploadError as exc:
        return Storage(location, key_prefix, client_error=exc)
    return Storage(location, key_prefix, client, history=S3History(client, location, base))


def upload_results(storage: Storage, out: Path, outputs_dir: Path | None) -> None:
    """Upload `out` under the run's key prefix; then the report_uri output names the S3 copy."""
    if storage.location is None:
        return
    try:
        if storage.client_error is not None:
            raise storage.client_error
        files = bundle_files(out)
        upload_files(storage.client, storage.location, storage.key_prefix, files, out)
    except UploadError as exc:
        raise UploadError(f"{exc}; local results are complete in {out}") from None
    if outputs_dir is not None:
        write_outputs(outputs_dir, {"report_uri": storage.report_uri(out)})
