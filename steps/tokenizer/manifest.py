"""`manifest.json`: what tokenizer the run used, so results can be traced and re-checked.

The load step sizes prompts with this tokenizer; a different revision changes token counts, so
the manifest pins the source, the resolved revision, the vocabulary size and each file's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_NAME", "build_manifest", "file_entries", "write_manifest"]

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(directory: Path, names: Iterable[str]) -> list[dict[str, Any]]:
    """`{"name", "bytes", "sha256"}` per file, sorted by name."""
    return [
        {
            "name": name,
            "bytes": (directory / name).stat().st_size,
            "sha256": _sha256(directory / name),
        }
        for name in sorted(names)
    ]


def build_manifest(
    *,
    source: str,
    kind: str,
    revision: str | None,
    vocab_size: int,
    tokenizer_class: str,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest document; `vocab_size` counts every id incl. added tokens (len(tokenizer))."""
    return {
        "source": source,
        "kind": kind,
        "revision": revision,
        "vocab_size": vocab_size,
        "tokenizer_class": tokenizer_class,
        "files": files,
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest.json` (sorted keys, stable across runs) into `directory`."""
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
