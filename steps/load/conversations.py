"""`data.type: shareGPT`: prompts and max_tokens from real conversations, as inference-perf
defines them, sampled deterministically from the seed.

Each conversation's first human turn is the prompt and the token count of the reply after it
is `max_tokens` (inference-perf's HFShareGPTDataGenerator); a pair is kept when its prompt
length (as the server counts it: special tokens, or the chat template) lies within
`data.input_distribution`'s [min, max] and the reply's within `output_distribution`'s: those
two blocks only filter here. Chat requests send the first human turn as one user message
(inference-perf sends the whole conversation, the recorded answers included; here every
request is one prompt and one answer, for every data type).

Sampling: every pair gets a priority from a keyed hash of (seed, its position in the file), and
the `count` pairs of lowest priority that pass the filters are sent, in priority order. The same
file and seed give the same requests in the same order, whatever the worker count; the file is
read as a stream (`steps.sharegpt`), holding a few times `count` pairs, never the file. Fewer
pairs passing the filters than the run needs is an error naming both numbers: repeating prompts
would turn the run into a prefix-cache benchmark.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.errors import UsageError
from steps.load.config import Config, DataConfig
from steps.load.prompts import count_prompt_tokens
from steps.shared import APIType
from steps.sharegpt import MANIFEST_NAME, DatasetScan, Exchange, read_exchanges

__all__ = [
    "DatasetSample",
    "dataset_file",
    "sample_conversations",
    "sample_dataset",
]

log = logging.getLogger(__name__)

#: Pairs tokenized per call: batched encoding is several times faster than one at a time.
_BATCH = 256


@dataclass(frozen=True)
class DatasetSample:
    """The chosen prompts with their token lengths, and what the pass over the file found."""

    prompts: list[str]
    input_lengths: list[int]
    output_lengths: list[int]
    scan: DatasetScan
    examined: int  # pairs tokenized (in priority order) to find the sample

    def run_info(self) -> dict[str, Any]:
        """run.json's `dataset`: which file, exactly (sha256), and how it was read."""
        scan = self.scan
        return {
            "path": str(scan.path),
            "sha256": scan.sha256,
            "bytes": scan.bytes_read,
            "conversations": scan.conversations,
            "exchanges": scan.exchanges,
            "examined": self.examined,
            "sampled": len(self.prompts),
            "truncated": scan.truncated,
        }


def _priority(seed: int, index: int) -> bytes:
    """A pair's place in the sampling order: a keyed hash, stable across runs and machines."""
    return hashlib.blake2b(index.to_bytes(8, "big"), key=seed.to_bytes(8, "big")).digest()[:8]


def _lowest(exchanges: Iterator[Exchange], size: int, seed: int) -> list[Exchange]:
    """The `size` exchanges of lowest priority, lowest first (a bounded heap: the file is not
    held, only these)."""
    heap: list[tuple[bytes, int, Exchange]] = []  # max-heap on priority via inverted bytes
    for exchange in exchanges:
        rank = bytes(255 - b for b in _priority(seed, exchange.index))
        entry = (rank, exchange.index, exchange)
        if len(heap) < size:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
    return [e[2] for e in sorted(heap, key=lambda e: e[:2], reverse=True)]


def _read_lowest(path: Path, size: int, seed: int) -> tuple[list[Exchange], DatasetScan]:
    scan = DatasetScan(path)
    try:
        with path.open("rb") as fh:
            return _lowest(read_exchanges(fh, scan), size, seed), scan
    except OSError as exc:
        raise UsageError(f"dataset {path}: cannot read ({exc.strerror or exc})") from None


def _within_filters(
    candidates: list[Exchange], tokenizer: Any, api_type: APIType, data: DataConfig, count: int
) -> tuple[list[tuple[str, int, int]], int]:
    """(prompt, prompt tokens, reply tokens) of the first `count` candidates within the length
    filters, in candidate order; and how many candidates were tokenized to find them."""
    low_in, high_in = data.input_distribution.min, data.input_distribution.max
    low_out, high_out = data.output_distribution.min, data.output_distribution.max
    chosen: list[tuple[str, int, int]] = []
    examined = 0
    for start in range(0, len(candidates), _BATCH):
        batch = candidates[start : start + _BATCH]
        prompt_lengths = count_prompt_tokens(tokenizer, api_type, [e.prompt for e in batch])
        reply_ids = tokenizer(
            [e.reply for e in batch], add_special_tokens=False, return_attention_mask=False
        )["input_ids"]
        for exchange, n_in, ids in zip(batch, prompt_lengths, reply_ids, strict=True):
            examined += 1
            if low_in <= n_in <= high_in and low_out <= len(ids) <= high_out:
                chosen.append((exchange.prompt, n_in, len(ids)))
                if len(chosen) == count:
                    return chosen, examined
    return chosen, examined


def sample_conversations(
    path: Path, tokenizer: Any, api_type: APIType, data: DataConfig, count: int, seed: int
) -> DatasetSample:
    """`count` (prompt, input length, max_tokens) from the ShareGPT file at `path`.

    The `count` lowest-priority pairs within the filters are found among the lowest-priority
    pairs of the file, so only a few times `count` are tokenized, not the whole file: pass one
    keeps twice `count` (plus a margin); when too few of those pass the filters, the file is
    read again keeping four times more, until every pair was examined. Same answer as
    filtering everything first.
    """
    started = time.monotonic()
    size = 2 * count + 64
    while True:
        candidates, scan = _read_lowest(path, size, seed)
        chosen, examined = _within_filters(candidates, tokenizer, api_type, data, count)
        if len(chosen) == count or len(candidates) == scan.exchanges:
            break
        size *= 4
    if scan.truncated:
        log.warning("dataset %s: %s", path, scan.truncated)
    if len(chosen) < count:
        dist_in, dist_out = data.input_distribution, data.output_distribution
        raise UsageError(
            f"dataset {path}: {len(chosen)} of {scan.exchanges} conversations have a prompt of "
            f"{dist_in.min}..{dist_in.max} tokens (data.input_distribution min..max) and a "
            f"reply of {dist_out.min}..{dist_out.max} tokens (data.output_distribution), the "
            f"run needs {count}; widen the filters or send fewer requests"
        )
    log.info(
        "dataset %s: %d conversations, %d sampled (seed %d; %d tokenized) in %.1f s",
        path,
        scan.conversations,
        count,
        seed,
        examined,
        time.monotonic() - started,
    )
    return DatasetSample(
        prompts=[c[0] for c in chosen],
        input_lengths=[c[1] for c in chosen],
        output_lengths=[c[2] for c in chosen],
        scan=scan,
        examined=examined,
    )


def dataset_file(location: Path) -> tuple[Path, str | None]:
    """The conversations file at `location` and the sha256 its manifest promises (None: no
    manifest). A directory is the dataset step's --out (manifest.json names the file) or holds
    exactly one .json file."""
    if location.is_file():
        return location, None
    if not location.is_dir():
        raise UsageError(f"dataset {location}: no such file or directory")
    manifest = location / MANIFEST_NAME
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            name, digest = doc["file"], doc["sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"dataset {manifest}: not a dataset manifest ({type(exc).__name__}: {exc}); "
                "rerun the dataset step"
            ) from None
        path = location / str(name)
        if Path(str(name)).name != str(name) or not path.is_file():
            raise UsageError(f"dataset {manifest}: names {name!r}, which is not a file beside it")
        return path, str(digest)
    files = sorted(p for p in location.glob("*.json") if p.is_file())
    if len(files) != 1:
        found = ", ".join(p.name for p in files[:5]) or "none"
        raise UsageError(
            f"dataset {location}: expected one .json conversations file (or a manifest.json), "
            f"found {found}"
        )
    return files[0], None


def sample_dataset(
    location: Path | None, tokenizer: Any, config: Config, count: int
) -> DatasetSample:
    """`sample_conversations` from --dataset-dir, else data.path; the file must be the one its
    manifest describes (a changed or swapped file fails before anything is sent)."""
    if location is None:
        if config.data.path is None:
            raise UsageError(
                "data.type shareGPT needs the conversations: pass --dataset-dir DIR (the dataset "
                "step's output) or set data.path"
            )
        location = Path(config.data.path)
    path, expected = dataset_file(location)
    sample = sample_conversations(
        path, tokenizer, config.api.type, config.data, count, config.load.seed
    )
    if expected is not None and expected != sample.scan.sha256:
        raise UsageError(
            f"dataset {path}: sha256 {sample.scan.sha256} differs from its manifest's {expected}; "
            "the file changed after the dataset step fetched it: rerun that step"
        )
    return sample
