"""ShareGPT files read as a stream (steps.sharegpt) and sampled by the load step
(steps.load.conversations), on small files written here and the real Qwen tokenizer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from steps.errors import UsageError
from steps.load.config import DataConfig
from steps.load.conversations import dataset_file, sample_conversations
from steps.load.prompts import load_tokenizer
from steps.shared import APIType
from steps.sharegpt import scan_file


def _conversation(i: int, words: int = 5, reply_words: int = 8) -> dict[str, Any]:
    return {
        "id": f"c{i}",
        "conversations": [
            {"from": "human", "value": f"question {i} " + "word " * words},
            {"from": "gpt", "value": "answer " * reply_words},
            {"from": "human", "value": "a later turn, never sent"},
        ],
    }


def _write(path: Path, items: list[Any]) -> bytes:
    data = json.dumps(items, indent=1).encode()
    path.write_bytes(data)
    return data


def test_scan_complete_file_counts_skips_and_hashes_every_byte(tmp_path: Path) -> None:
    items: list[Any] = [_conversation(i) for i in range(5)]
    items += [
        {"id": "x", "conversations": [{"from": "gpt", "value": "no human turn"}]},
        {"id": "y", "conversations": [{"from": "human", "value": "no reply"}]},
        "not a conversation",
    ]
    data = _write(tmp_path / "d.json", items)
    scan = scan_file(tmp_path / "d.json")
    assert (scan.conversations, scan.exchanges, scan.truncated) == (8, 5, None)
    assert (scan.sha256, scan.bytes_read) == (hashlib.sha256(data).hexdigest(), len(data))


def test_scan_file_cut_mid_conversation_uses_the_complete_ones_and_says_where(
    tmp_path: Path,
) -> None:
    data = json.dumps([_conversation(i) for i in range(3)]).encode()
    cut = data[: data.index(b"question 2") + 4]
    (tmp_path / "d.json").write_bytes(cut)
    scan = scan_file(tmp_path / "d.json")
    assert (scan.conversations, scan.exchanges) == (2, 2)
    assert scan.truncated is not None
    assert f"ends at byte {len(cut):,} inside conversation 3" in scan.truncated
    assert scan.sha256 == hashlib.sha256(cut).hexdigest()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b'{"id": "x"}', "starts with b'{', not a JSON array"),
        (b"\xef\xbb\xbf  \n", "is empty"),
    ],
)
def test_scan_not_an_array_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "d.json").write_bytes(content)
    with pytest.raises(UsageError, match=expected) as info:
        scan_file(tmp_path / "d.json")
    assert "\n" not in str(info.value)


def test_scan_damage_mid_file_is_an_error_not_a_truncation(tmp_path: Path) -> None:
    """Bad bytes followed by more of the file: damaged, not cut short (nothing is used)."""
    data = json.dumps([_conversation(i, words=50) for i in range(2000)]).encode()
    middle = data.index(b'"question 1000')
    (tmp_path / "d.json").write_bytes(data[:middle] + b"@@@" + data[middle:])
    with pytest.raises(UsageError, match="not valid JSON after 1000 conversations, near byte"):
        scan_file(tmp_path / "d.json")


@pytest.fixture(scope="module")
def qwen(qwen_tokenizer_dir: Path) -> Any:
    return load_tokenizer(str(qwen_tokenizer_dir), None, None)


def _data(in_min: int = 1, in_max: int = 1000, out_min: int = 1, out_max: int = 1000) -> DataConfig:
    return DataConfig.model_validate(
        {
            "type": "shareGPT",
            "input_distribution": {"min": in_min, "max": in_max, "mean": in_min},
            "output_distribution": {"min": out_min, "max": out_max, "mean": out_min},
        }
    )


def test_sample_is_a_function_of_file_and_seed_and_respects_filters(
    tmp_path: Path, qwen: Any
) -> None:
    # Prompt lengths grow with i; replies alternate 8 and 40 words.
    items = [_conversation(i, words=i, reply_words=8 if i % 2 else 40) for i in range(300)]
    _write(tmp_path / "d.json", items)
    data = _data(in_max=100, out_max=20)
    one = sample_conversations(tmp_path / "d.json", qwen, APIType.completion, data, 30, seed=1)
    again = sample_conversations(tmp_path / "d.json", qwen, APIType.completion, data, 30, seed=1)
    other = sample_conversations(tmp_path / "d.json", qwen, APIType.completion, data, 30, seed=2)
    assert one.prompts == again.prompts and one.output_lengths == again.output_lengths
    assert one.prompts != other.prompts
    assert len(set(one.prompts)) == 30
    short_reply = len(qwen("answer " * 8, add_special_tokens=False)["input_ids"])
    assert short_reply <= 20 < len(qwen("answer " * 40, add_special_tokens=False)["input_ids"])
    assert all(n <= 100 for n in one.input_lengths) and set(one.output_lengths) == {short_reply}
    # The lengths are the real tokenizer's counts: the prompt with its specials, the reply bare.
    for prompt, n in zip(one.prompts, one.input_lengths, strict=True):
        assert n == len(qwen(prompt, add_special_tokens=True)["input_ids"])
    assert one.run_info()["sampled"] == 30 and one.run_info()["truncated"] is None


def test_sample_too_few_within_filters_names_both_numbers(tmp_path: Path, qwen: Any) -> None:
    _write(tmp_path / "d.json", [_conversation(i, reply_words=8 + i) for i in range(20)])
    data = _data(out_max=len(qwen("answer " * 12, add_special_tokens=False)["input_ids"]))
    with pytest.raises(UsageError, match=r"5 of 20 conversations .* the run needs 6"):
        sample_conversations(tmp_path / "d.json", qwen, APIType.completion, data, 6, seed=0)


def test_dataset_file_directory_manifest_or_single_json(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    _write(tmp_path / "one" / "conv.json", [_conversation(0)])
    assert dataset_file(tmp_path / "one") == (tmp_path / "one" / "conv.json", None)
    (tmp_path / "one" / "manifest.json").write_text(
        json.dumps({"file": "conv.json", "sha256": "ab"})
    )
    assert dataset_file(tmp_path / "one") == (tmp_path / "one" / "conv.json", "ab")
    (tmp_path / "two").mkdir()
    for name in ("a.json", "b.json"):
        _write(tmp_path / "two" / name, [])
    with pytest.raises(
        UsageError, match=r"expected one \.json conversations file .* a\.json, b\.json"
    ):
        dataset_file(tmp_path / "two")
    (tmp_path / "two" / "manifest.json").write_text(json.dumps({"file": "../x", "sha256": "ab"}))
    with pytest.raises(UsageError, match="not a file beside it"):
        dataset_file(tmp_path / "two")
