"""Token text for generated output and prompt token counting, with or without a real tokenizer.

Per-chunk work must stay in microseconds, so every generated token comes from a table built once:
its id, and its text already JSON-encoded as bytes. With `--tokenizer DIR` the table holds real
vocabulary entries (" word" tokens, which decode on their own without byte-fallback artefacts)
and prompts are counted exactly as vLLM would; without one, a fixed word list stands in and text
prompts are counted approximately (one token per 4 UTF-8 bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.errors import UsageError

__all__ = ["OutputToken", "TokenModel", "approx_token_count", "load_token_model"]

#: Stand-in output vocabulary without a tokenizer; fake ids start at _FAKE_ID_BASE.
_WORDS_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no what "
    "up out more some time into only could new them man other see then first any now such like "
    "well our these may over also back after use two how way even because good each those people"
)
_FAKE_ID_BASE = 1000
#: Real vocabulary entries used as output: a space and a short lowercase word ("Ġ" is BPE's space).
_WORD_TOKEN = re.compile(r"^\u0120[a-z]{3,8}$")
_MAX_TABLE = 4096
_BYTES_PER_TOKEN = 4

#: ChatML (Qwen's format) when the tokenizer directory carries no chat template.
_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True, slots=True)
class OutputToken:
    """One generated token: id, text, and both pre-encoded for the SSE payload."""

    token_id: int
    text: str
    json_text: bytes
    id_bytes: bytes


def approx_token_count(text: str) -> int:
    """Approximate prompt tokens without a tokenizer: one per 4 UTF-8 bytes, at least 1."""
    return max(1, round(len(text.encode()) / _BYTES_PER_TOKEN))


def _table(entries: Sequence[tuple[int, str]]) -> tuple[OutputToken, ...]:
    return tuple(
        OutputToken(tid, text, json.dumps(text).encode(), str(tid).encode())
        for tid, text in entries
    )


def _flatten_content(content: Any) -> str:
    """OpenAI message content: a string, or a list of parts of which the text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


@dataclass(frozen=True)
class TokenModel:
    """Output token table plus the prompt counters (exact with a tokenizer, else approximate)."""

    table: tuple[OutputToken, ...]
    #: (text, add_special_tokens) -> tokens; vLLM adds special tokens (BOS) to completion
    #: prompts but not to a rendered chat template, which already holds them.
    count_text: Callable[[str, bool], int]
    render_chat: Callable[[list[dict[str, Any]]], str]
    exact: bool

    def count_chat(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of chat messages after the chat template, as vLLM counts them."""
        flat = [
            {**m, "content": _flatten_content(m.get("content"))}
            for m in messages
            if isinstance(m, dict)
        ]
        return self.count_text(self.render_chat(flat), False)


def _compile_template(source: str) -> Callable[[list[dict[str, Any]]], str]:
    """Compile a chat template once, the way transformers renders it (sandboxed, trimmed).

    Rendering raises ValueError for messages the template refuses (templates call
    `raise_exception`, e.g. "roles must alternate"), so the server answers 400 as vLLM does.
    """
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(source)

    def render(messages: list[dict[str, Any]]) -> str:
        try:
            return template.render(messages=messages, add_generation_prompt=True)
        except TemplateError as exc:
            raise ValueError(f"chat template cannot render these messages: {exc}") from None

    return render


def _read_chat_template(directory: Path) -> str | None:
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text()
    config_file = directory / "tokenizer_config.json"
    if config_file.is_file():
        template = json.loads(config_file.read_text()).get("chat_template")
        if isinstance(template, str):
            return template
        if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
            for item in template:
                if isinstance(item, dict) and item.get("name") == "default":
                    return str(item["template"])
    return None


def load_token_model(tokenizer_dir: Path | None) -> TokenModel:
    """Build the token model; raises UsageError when the tokenizer directory is unusable."""
    if tokenizer_dir is None:
        words = [(_FAKE_ID_BASE + i, " " + w) for i, w in enumerate(_WORDS_TEXT.split())]
        return TokenModel(
            _table(words),
            lambda text, _special: approx_token_count(text),
            _compile_template(_CHATML),
            False,
        )

    from tokenizers import Tokenizer

    path = tokenizer_dir / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises a bare Exception for any bad file
        raise UsageError(
            f"--tokenizer {tokenizer_dir}: cannot load {path.name} ({exc}); "
            "pass a Hugging Face tokenizer directory"
        ) from exc
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    words = sorted((tid, " " + tok[1:]) for tok, tid in vocab.items() if _WORD_TOKEN.match(tok))
    if not words:
        raise UsageError(
            f"--tokenizer {tokenizer_dir}: no byte-level BPE word tokens found; "
            "the simulator needs a GPT-2/Qwen style tokenizer.json"
        )
    step = max(1, len(words) // _MAX_TABLE)

    def count_text(text: str, add_special_tokens: bool) -> int:
        return len(tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    from jinja2 import TemplateError

    try:
        render_chat = _compile_template(_read_chat_template(tokenizer_dir) or _CHATML)
    except (OSError, ValueError, KeyError, TemplateError) as exc:  # JSON, UTF-8, Jinja syntax
        raise UsageError(
            f"--tokenizer {tokenizer_dir}: unusable chat template "
            f"({type(exc).__name__}: {exc}); fix chat_template.jinja or tokenizer_config.json"
        ) from None
    return TokenModel(_table(words[::step][:_MAX_TABLE]), count_text, render_chat, True)
