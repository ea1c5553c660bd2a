"""Which files of a directory make up a tokenizer, and moving them into the output directory.

Shared by the three sources (Hub snapshot, local directory, offline build) so they select and
copy the same set of files.
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

__all__ = ["TOKENIZER_PATTERNS", "copy_files", "remove_tokenizer_files", "tokenizer_files"]

#: Files a tokenizer can consist of (fast, slow BPE/WordPiece/SentencePiece, tiktoken, chat
#: template); config.json because AutoTokenizer falls back to the model type to pick a class.
TOKENIZER_PATTERNS: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "*.tiktoken",
    "chat_template.jinja",
    "chat_template.json",
    "config.json",
)


#: Present in model repos without being a tokenizer: alone, it does not count as one.
_NOT_ENOUGH = frozenset({"config.json"})


def _matching(directory: Path) -> list[str]:
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in TOKENIZER_PATTERNS)
    )


def tokenizer_files(directory: Path) -> list[str]:
    """Names of the top-level tokenizer files in `directory`; [] when it holds no tokenizer."""
    names = _matching(directory)
    return names if set(names) - _NOT_ENOUGH else []


def remove_tokenizer_files(directory: Path) -> None:
    """Delete a previous run's tokenizer files (a stale vocab.json would confuse AutoTokenizer)."""
    for name in _matching(directory):
        (directory / name).unlink()


def copy_files(src: Path, dst: Path, names: list[str]) -> None:
    """Copy `names` from `src` to `dst`, resolving the HF cache's symlinks into real files."""
    for name in names:
        shutil.copyfile(src / name, dst / name)
