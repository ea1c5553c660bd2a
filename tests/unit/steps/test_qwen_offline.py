from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from steps.qwen_offline import QWEN_ADDED_TOKENS, QWEN_FIRST_ADDED_ID


def test_build_qwen_tokenizer_encodes_like_the_hub_tokenizer(qwen_tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))
    # Ids of Qwen/Qwen3-8B's tokenizer on the Hub for the same text.
    assert tok("Hello world,")["input_ids"] == [9707, 1879, 11]
    # Qwen splits digits one at a time.
    assert len(tok("12345")["input_ids"]) == 5


def test_build_qwen_tokenizer_added_tokens_have_qwen_ids(qwen_tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))
    for offset, (text, _special) in enumerate(QWEN_ADDED_TOKENS):
        assert tok.convert_tokens_to_ids(text) == QWEN_FIRST_ADDED_ID + offset
    assert tok.eos_token_id == 151645
    assert len(tok) == QWEN_FIRST_ADDED_ID + len(QWEN_ADDED_TOKENS)
