"""What `--tokenizer` names, decided before anything is fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.errors import UsageError
from steps.tokenizer.source import OFFLINE_QWEN, SourceKind, source_kind


def test_source_kind_offline_qwen_local_directory_and_repo_id(tmp_path: Path) -> None:
    assert source_kind(OFFLINE_QWEN) is SourceKind.offline
    assert source_kind(str(tmp_path)) is SourceKind.local
    assert source_kind("Qwen/Qwen3-8B") is SourceKind.hub
    assert source_kind("gpt2") is SourceKind.hub


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("offline:llama", "unknown offline source; known: offline:qwen"),
        ("./missing", "no such directory and not a Hub repo id"),
        ("a/b/c", "no such directory and not a Hub repo id"),
        ("Qwen/Qwen 3", "no such directory and not a Hub repo id"),
    ],
)
def test_source_kind_neither_directory_nor_repo_id_is_usage_error(
    source: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        source_kind(source)


def test_source_kind_file_asks_for_its_directory(tmp_path: Path) -> None:
    file = tmp_path / "tokenizer.json"
    file.write_text("{}")
    with pytest.raises(UsageError, match="is a file; give the directory that holds it"):
        source_kind(str(file))
