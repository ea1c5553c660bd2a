"""What `--dataset` names: a local file or directory, an `s3://bucket/key` object, or a Hugging
Face dataset repo id; decided from the text alone before anything is fetched, so a typo fails in
one line instead of as a 404 after a network round trip."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from steps.errors import UsageError
from steps.names import check_bucket_name

__all__ = ["S3Object", "SourceKind", "parse_s3_uri", "source_kind"]

# Hub ids: "name" or "org/name", letters, digits, - _ . (huggingface_hub's validate_repo_id).
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class SourceKind(StrEnum):
    """Where the file comes from; recorded as the manifest's `kind`."""

    local = "local"
    s3 = "s3"
    hub = "hub"


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str


def parse_s3_uri(source: str) -> S3Object:
    """`s3://bucket/key` with a valid bucket name and a key that names a file."""
    rest = source.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    try:
        check_bucket_name(bucket)
    except ValueError as exc:
        raise UsageError(f"--dataset {source!r}: {exc}") from None
    if not key or key.endswith("/"):
        raise UsageError(f"--dataset {source!r}: give the object's key, s3://bucket/path/file.json")
    return S3Object(bucket, key)


def source_kind(source: str) -> SourceKind:
    """Classify `--dataset`; UsageError for something that is none of the three."""
    if source.startswith("s3://"):
        parse_s3_uri(source)
        return SourceKind.s3
    if Path(source).expanduser().exists():
        return SourceKind.local
    looks_like_path = source.startswith(("/", "./", "../", "~")) or source.count("/") > 1
    if looks_like_path or not _REPO_ID_RE.match(source):
        raise UsageError(
            f"--dataset {source!r}: no such file or directory, and not s3://bucket/key or a "
            "Hugging Face dataset repo id (org/name)"
        )
    return SourceKind.hub
