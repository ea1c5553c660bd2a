"""Token text tables and prompt counting, with the real Qwen tokenizer and without one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from steps.errors import UsageError
from steps.simulator.tokens import approx_token_count, load_token_model


def test_load_token_model_without_tokenizer_approximates_4_bytes_per_token() -> None:
    model = load_token_model(None)
    assert model.exact is False
    assert model.count_text("x" * 40, True) == 10
    assert approx_token_count("") == 1
    assert all(json.loads(t.json_text) == t.text for t in model.table)


def test_load_token_model_qwen_counts_like_the_tokenizer(qwen_tokenizer_dir: Path) -> None:
    model = load_token_model(qwen_tokenizer_dir)
    assert model.exact is True
    assert model.count_text("Hello world,", True) == 3  # 9707, 1879, 11
    tokenizer = Tokenizer.from_file(str(qwen_tokenizer_dir / "tokenizer.json"))
    sample = model.table[:50]
    # Each output token is one real vocabulary entry that decodes to its own text.
    assert [tokenizer.decode([t.token_id]) for t in sample] == [t.text for t in sample]


def test_count_chat_qwen_uses_chat_template(qwen_tokenizer_dir: Path) -> None:
    model = load_token_model(qwen_tokenizer_dir)
    tokenizer = Tokenizer.from_file(str(qwen_tokenizer_dir / "tokenizer.json"))
    rendered = "<|im_start|>user\nHello world,<|im_end|>\n<|im_start|>assistant\n"
    expected = len(tokenizer.encode(rendered, add_special_tokens=False).ids)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hello world,"}]}]
    assert model.count_chat(messages) == expected


def test_load_token_model_missing_dir_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--tokenizer"):
        load_token_model(tmp_path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tokenizer_config.json", "{not json"),
        ("chat_template.jinja", "{% for m in messages %}{{ m['content'] }"),
    ],
)
def test_load_token_model_broken_chat_template_usage_error(
    qwen_tokenizer_dir: Path, tmp_path: Path, name: str, text: str
) -> None:
    broken = tmp_path / "tok"
    shutil.copytree(qwen_tokenizer_dir, broken)
    (broken / "chat_template.jinja").unlink()  # read first when present
    (broken / name).write_text(text)
    with pytest.raises(UsageError, match="unusable chat template"):
        load_token_model(broken)
