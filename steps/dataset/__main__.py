"""`python -m steps.dataset`: put a checked ShareGPT conversations file (+ manifest.json) into
`--out`, for the load step's `--dataset-dir`.

Sources, by the shape of `--dataset` (the workflow parameter `dataset`):
- a local file, or a directory holding one .json file: copied (passed through when in `--out`);
- `s3://bucket/key`: downloaded with boto3 (standard credential chain, `--s3-endpoint-url` for
  an S3-compatible store);
- anything else is a Hugging Face dataset repo id (`anon8231489123/ShareGPT_Vicuna_unfiltered`),
  `--dataset-file` in it fetched through the HF cache (HF_HUB_OFFLINE=1 uses the cache only).

The file is then read once as a stream (steps.sharegpt), as the load step will read it, so a
damaged file fails here, before the GPU is reserved: the manifest records its sha256 (which the
load step checks), its size, the conversations it holds and whether it was cut short (then the
complete conversations before the cut are usable, and a warning says so). Exit 0 ok; 1 fetch
failed; 2 bad flags, or a file that is not a ShareGPT array.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from steps.cli import add_log_level_flag, add_optional_flags, make_parser, run_step
from steps.dataset.fetch import fetch_hub, fetch_local, fetch_s3
from steps.dataset.source import SourceKind, source_kind
from steps.errors import BenchError, UsageError
from steps.hf_hub import HubAccess, hub_access_from_env
from steps.names import ENV_NAME_PATTERN, check_endpoint_url
from steps.shared import StrictModel
from steps.sharegpt import MANIFEST_NAME, scan_file

log = logging.getLogger("steps.dataset")

STEP = "dataset"
DEFAULT_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"


class DatasetSettings(StrictModel):
    """The dataset step's flags, typed (field = flag with `-` for `_`)."""

    dataset: str = Field(
        min_length=1,
        description="local file or directory, s3://bucket/key, or a Hugging Face dataset repo id",
    )
    out: Path = Field(description="output directory for the file and manifest.json")
    dataset_file: str = Field(
        default=DEFAULT_FILE,
        min_length=1,
        description=f"the file inside a Hub dataset repo (default {DEFAULT_FILE})",
    )
    revision: str | None = Field(
        default=None, min_length=1, description="Hub branch, tag or commit (default main)"
    )
    token_env: str = Field(
        default="HF_TOKEN",
        pattern=ENV_NAME_PATTERN,
        description="NAME of the environment variable holding the Hub token (never the token)",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint for an s3:// source; unset = AWS"
    )


def _fetch(config: DatasetSettings, kind: SourceKind, access: HubAccess) -> tuple[Path, Any]:
    if kind is SourceKind.local:
        return fetch_local(config.dataset, config.out)
    if kind is SourceKind.s3:
        return fetch_s3(config.dataset, config.out, config.s3_endpoint_url)
    return fetch_hub(
        config.dataset, config.dataset_file, config.revision or "main", access, config.out
    )


def _clear_out(out: Path, keep: Path | None) -> None:
    """Remove an earlier run's .json files and manifest (never a local source that is in it)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        if keep is None or stale.resolve() != keep.resolve():
            stale.unlink()


def run(config: DatasetSettings, access: HubAccess | None = None) -> dict[str, Any]:
    """Fetch, check and describe the file; returns the manifest written to `--out`."""
    access = access or HubAccess()
    kind = source_kind(config.dataset)
    if config.s3_endpoint_url:
        try:
            check_endpoint_url(config.s3_endpoint_url)
        except ValueError as exc:
            raise UsageError(f"--s3-endpoint-url: {exc}") from None
    local = Path(config.dataset).expanduser() if kind is SourceKind.local else None
    try:
        _clear_out(config.out, local if local is not None and local.is_file() else None)
        log.info("dataset source %r (%s) -> %s", config.dataset, kind.value, config.out)
        path, revision = _fetch(config, kind, access)
    except OSError as exc:
        where = exc.filename or config.out
        raise BenchError(
            f"--out {config.out}: cannot write {where} ({exc.strerror or exc})"
        ) from None
    scan = scan_file(path)
    if not scan.exchanges:
        raise UsageError(
            f"dataset {path}: none of its {scan.conversations} conversations has a human turn "
            "followed by a reply; is it a ShareGPT file?"
        )
    if scan.truncated:
        log.warning("dataset %s: %s", path, scan.truncated)
    manifest = {
        "source": config.dataset,
        "kind": kind.value,
        "revision": revision,
        "file": path.name,
        "bytes": scan.bytes_read,
        "sha256": scan.sha256,
        "conversations": scan.conversations,
        "exchanges": scan.exchanges,
        "truncated": scan.truncated,
    }
    (config.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m steps.dataset",
        "Fetch a ShareGPT file (local, s3://, Hub dataset) into --out, check it, write a manifest.",
    )
    fields = DatasetSettings.model_fields
    parser.add_argument("--dataset", required=True, help=fields["dataset"].description)
    parser.add_argument("--out", required=True, help=fields["out"].description)
    add_optional_flags(
        parser, DatasetSettings, "dataset_file", "revision", "token_env", "s3_endpoint_url"
    )
    add_log_level_flag(parser)
    return parser


def _provide(config: DatasetSettings) -> int:
    access = hub_access_from_env(os.environ, config.token_env)
    manifest = run(config, access)
    print(
        f"dataset: {config.out / manifest['file']} ({manifest['conversations']} conversations, "
        f"sha256 {manifest['sha256']}{', truncated' if manifest['truncated'] else ''})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, read the Hub token and cache settings from the environment, run."""
    return run_step(STEP, _parser(), argv, DatasetSettings, _provide)


if __name__ == "__main__":
    sys.exit(main())
