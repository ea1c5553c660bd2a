"""Synthetic prompts of exactly N tokens under the target's tokenizer, distinct per request.

How: prompts are runs of "word tokens" (a space or `▁` followed by 2-12 lowercase letters, a
single vocabulary entry). Under BPE tokenizers each such word is its own pre-token, so N words
usually encode to exactly N tokens on the first try; every prompt is still re-encoded (with the
special tokens the server adds, e.g. a BOS) and grown or trimmed until the count is exact, and a
prompt that does not converge in `MAX_ROUNDS` is an error, never a silently wrong length.
(Decoding random token ids instead gave 545 tokens for 512 ids under Qwen: merges across ids.)

Chat requests are sized as the server counts them: the rendered chat template (role markers,
generation prompt) plus the content, encoded without extra special tokens as vLLM does.

Distinct prompts: the first two words encode (run nonce, request number), unique within a run
and, through the run id, across runs, so no request shares a prefix-cache block with any other
request ever sent (a nightly run against the same server must not hit the previous night's
cache). The remaining words come from the seeded RNG.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from steps.errors import UsageError
from steps.load.config import Distribution, DistributionType
from steps.shared import APIType

__all__ = [
    "MAX_ROUNDS",
    "PromptBuilder",
    "SharedPrefixPrompts",
    "build_shared_prefix",
    "count_prompt_tokens",
    "load_tokenizer",
    "sample_lengths",
]

MAX_ROUNDS = 20
# Byte-level BPE marks a leading space as "Ġ" (U+0120), SentencePiece as "▁" (U+2581).
_WORD_TOKEN = re.compile("^[\u0120\u2581][a-z]{2,12}$")
_MIN_POOL = 256


def load_tokenizer(source: str, token: str | None, trust_remote_code: bool | None) -> Any:
    """`transformers.AutoTokenizer` for a local directory or Hub id; failures -> UsageError."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            source, token=token, trust_remote_code=bool(trust_remote_code)
        )
    except Exception as exc:  # transformers raises OSError, ValueError, HF errors...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"cannot load tokenizer {source!r} ({reason[:200]}); pass --tokenizer-dir DIR or "
            "set tokenizer.pretrained_model_name_or_path"
        ) from None


def sample_lengths(dist: Distribution, count: int, rng: random.Random) -> list[int]:
    """`count` token lengths from `dist`, clipped to [min, max]."""
    if dist.is_fixed:
        value = int(dist.mean) if dist.type is not DistributionType.uniform else dist.min
        return [value] * count
    if dist.type is DistributionType.uniform:
        return [rng.randint(dist.min, dist.max) for _ in range(count)]
    return [
        min(dist.max, max(dist.min, round(rng.gauss(dist.mean, dist.std_dev))))
        for _ in range(count)
    ]


class PromptBuilder:
    """Builds exact-length prompts for one run; holds the tokenizer and its word pool."""

    def __init__(self, tokenizer: Any, api_type: APIType, seed: int, run_id: str) -> None:
        self._tok = tokenizer
        self._api_type = api_type
        self._rng = random.Random(seed)
        self._nonce = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")
        self._words = _word_pool(tokenizer)
        if api_type is APIType.chat and not getattr(tokenizer, "chat_template", None):
            raise UsageError(
                "api.type chat needs a tokenizer with a chat template to size prompts; "
                "this tokenizer has none (use api.type completion or another tokenizer)"
            )
        self.overhead = self._count([""])[0]

    def build(
        self,
        lengths: Sequence[int],
        numbers: Sequence[int] | None = None,
        prefixes: Sequence[str] | None = None,
    ) -> list[str]:
        """One prompt per requested length (in tokens); prompt i carries request number
        `numbers[i]` (default i: a load pod builds only its share of the run's numbers) and
        starts with `prefixes[i]` when given (its tokens count toward the length)."""
        for n in set(lengths):
            if n < self.overhead + 2:
                raise UsageError(
                    f"cannot build a prompt of {n} tokens: the tokenizer adds {self.overhead} "
                    f"special/template tokens and 2 are needed to keep prompts distinct"
                )
        numbers = range(len(lengths)) if numbers is None else numbers
        words = [
            self._unique_head(number) + self._random_words(max(0, n - self.overhead - 2))
            for number, n in zip(numbers, lengths, strict=True)
        ]
        heads = [""] * len(lengths) if prefixes is None else list(prefixes)
        pending = list(range(len(lengths)))
        for _ in range(MAX_ROUNDS):
            counts = self._count([heads[i] + "".join(words[i]) for i in pending])
            still = []
            for i, got in zip(pending, counts, strict=True):
                diff = lengths[i] - got
                if diff > 0:
                    words[i].extend(self._random_words(diff))
                elif diff < 0:
                    del words[i][max(2, len(words[i]) + diff) :]
                if diff:
                    still.append(i)
            pending = still
            if not pending:
                return [head + "".join(w) for head, w in zip(heads, words, strict=True)]
        raise UsageError(
            f"could not build a prompt of exactly {lengths[pending[0]]} tokens in {MAX_ROUNDS} "
            "rounds under this tokenizer; try another input length"
        )

    def _unique_head(self, number: int) -> list[str]:
        size = len(self._words)
        key = (self._nonce + number) % (size * size)
        return [self._words[key % size], self._words[key // size]]

    def _random_words(self, count: int) -> list[str]:
        return self._rng.choices(self._words, k=count) if count > 0 else []

    def _count(self, texts: list[str]) -> list[int]:
        return count_prompt_tokens(self._tok, self._api_type, texts)


def count_prompt_tokens(tokenizer: Any, api_type: APIType, texts: list[str]) -> list[int]:
    """Token counts of prompts as the server counts them: the special tokens it adds for a
    completion, the rendered chat template (role markers, generation prompt) for chat.

    Counted by the Rust tokenizer's `encode_batch_fast` when there is one (no offsets, no
    Python lists of ids: 0.84 against 1.02 ms CPU per 512-token prompt, interleaved), the same
    encoding transformers' call runs."""
    special = api_type is not APIType.chat
    if not special:
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False
            )
            for t in texts
        ]
    encode_fast = getattr(getattr(tokenizer, "_tokenizer", None), "encode_batch_fast", None)
    if encode_fast is not None:
        return [len(e) for e in encode_fast(texts, add_special_tokens=special)]
    ids = tokenizer(texts, add_special_tokens=special, return_attention_mask=False)
    return [len(x) for x in ids["input_ids"]]


@dataclass(frozen=True)
class SharedPrefixPrompts:
    """inference-perf's shared_prefix data: `num_groups` system prompts of `system_prompt_len`
    tokens, each followed by `num_prompts_per_group` distinct questions of `question_len`; a run
    sends them in a seeded shuffled order, round robin (request n: `prompts[order[n % P]]`)."""

    prompts: list[str]
    order: list[int]
    length: int  # every prompt's tokens as the server counts them

    def text(self, number: int) -> str:
        """Request `number`'s prompt."""
        return self.prompts[self.order[number % len(self.order)]]


def build_shared_prefix(
    builder: PromptBuilder,
    groups: int,
    per_group: int,
    prefix_len: int,
    question_len: int,
    seed: int,
) -> SharedPrefixPrompts:
    """Every group's prefix and questions at exact lengths. The same in every load pod of a run
    (seeded by the config, numbered from 0), distinct across runs (the run nonce): requests of
    one group share a prefix-cache entry within the run, never with last night's run."""
    if question_len < 2:
        raise UsageError(
            "data.shared_prefix.question_len must be >= 2: two tokens keep questions distinct"
        )
    overhead = builder.overhead
    prefixes = builder.build([overhead + prefix_len] * groups)
    length = overhead + prefix_len + question_len
    count = groups * per_group
    heads = [prefixes[i // per_group] for i in range(count)]
    # Question numbers after the prefixes' own: no question starts like a prefix.
    prompts = builder.build([length] * count, numbers=range(groups, groups + count), prefixes=heads)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return SharedPrefixPrompts(prompts, order, length)


def _word_pool(tokenizer: Any) -> list[str]:
    """Texts of the vocabulary's plain word tokens (e.g. " the"), in id order."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    pool = [i for i, piece in enumerate(pieces) if piece and _WORD_TOKEN.match(piece)]
    if len(pool) < _MIN_POOL:
        raise UsageError(
            f"tokenizer has only {len(pool)} plain word tokens (need {_MIN_POOL}) to build "
            "synthetic prompts from; is it a BPE or SentencePiece tokenizer?"
        )
    # The pattern fixes the text: a space, then the letters (no decode round-trip needed).
    return [" " + pieces[i][1:] for i in pool]
