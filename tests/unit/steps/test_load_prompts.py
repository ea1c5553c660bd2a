"""steps.load.prompts: exact lengths under the real Qwen tokenizer, distinct prompts."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from steps.errors import UsageError
from steps.load.config import Distribution
from steps.load.prompts import PromptBuilder, build_shared_prefix, load_tokenizer, sample_lengths
from steps.shared import APIType


@pytest.fixture(scope="module")
def qwen(qwen_tokenizer_dir: Path) -> Any:
    return load_tokenizer(str(qwen_tokenizer_dir), None, None)


def test_prompt_builder_512_tokens_count_512_under_qwen(qwen: Any) -> None:
    prompts = PromptBuilder(qwen, APIType.completion, seed=0, run_id="r1").build([512] * 50)
    counts = [len(qwen(p, add_special_tokens=True)["input_ids"]) for p in prompts]
    assert counts == [512] * 50
    assert len(set(prompts)) == 50


def test_prompt_builder_first_two_tokens_unique_no_shared_cache_block(qwen: Any) -> None:
    prompts = PromptBuilder(qwen, APIType.completion, seed=0, run_id="r1").build([64] * 200)
    heads = {tuple(qwen(p)["input_ids"][:2]) for p in prompts}
    assert len(heads) == 200


def test_prompt_builder_other_run_id_other_prompts_same_seed(qwen: Any) -> None:
    a = PromptBuilder(qwen, APIType.completion, seed=0, run_id="r1").build([32] * 3)
    b = PromptBuilder(qwen, APIType.completion, seed=0, run_id="r2").build([32] * 3)
    again = PromptBuilder(qwen, APIType.completion, seed=0, run_id="r1").build([32] * 3)
    assert a == again
    assert not set(a) & set(b)


def test_prompt_builder_chat_sizes_templated_prompt(qwen: Any) -> None:
    builder = PromptBuilder(qwen, APIType.chat, seed=1, run_id="r")
    prompts = builder.build([100, 257])
    for n, text in zip([100, 257], prompts, strict=True):
        rendered = qwen.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        assert len(qwen(rendered, add_special_tokens=False)["input_ids"]) == n
    assert builder.overhead > 0


def test_prompt_builder_too_short_for_template_usage_error(qwen: Any) -> None:
    builder = PromptBuilder(qwen, APIType.chat, seed=1, run_id="r")
    with pytest.raises(UsageError, match="cannot build a prompt of 3 tokens"):
        builder.build([3])


def test_load_tokenizer_missing_dir_one_line_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot load tokenizer") as info:
        load_tokenizer(str(tmp_path / "nope"), None, None)
    assert "\n" not in str(info.value)


def test_sample_lengths_fixed_normal_uniform_within_bounds() -> None:
    rng = random.Random(0)
    assert sample_lengths(Distribution(mean=512, std_dev=0, min=512, max=512), 3, rng) == [512] * 3
    normal = sample_lengths(Distribution(mean=100, std_dev=50, min=60, max=140), 500, rng)
    assert min(normal) == 60 and max(normal) == 140
    uniform = sample_lengths(Distribution(type="uniform", mean=1, min=5, max=9), 200, rng)
    assert set(uniform) == set(range(5, 10))


def test_shared_prefix_groups_share_an_exact_prefix_questions_distinct(qwen: Any) -> None:
    builder = PromptBuilder(qwen, APIType.completion, seed=3, run_id="r1")
    shared = build_shared_prefix(builder, 3, 4, prefix_len=40, question_len=10, seed=3)
    assert len(shared.prompts) == 12 and len(set(shared.prompts)) == 12
    assert sorted(shared.order) == list(range(12)) and shared.order != list(range(12))
    lengths = {len(qwen(p, add_special_tokens=True)["input_ids"]) for p in shared.prompts}
    assert lengths == {shared.length} == {builder.overhead + 50}
    for g in range(3):
        group = shared.prompts[4 * g : 4 * g + 4]
        ids = [qwen(p, add_special_tokens=True)["input_ids"] for p in group]
        assert all(x[:40] == ids[0][:40] for x in ids)  # one prefix, 40 tokens...
        assert len({tuple(x[40:42]) for x in ids}) == 4  # ...then distinct questions
    other = [qwen(p)["input_ids"][:40] for p in shared.prompts[::4]]
    assert len({tuple(x) for x in other}) == 3  # groups do not share it
    # Requests go round robin over the shuffled prompts.
    assert [shared.text(n) for n in range(24)] == [shared.prompts[i] for i in shared.order] * 2
    next_run = build_shared_prefix(
        PromptBuilder(qwen, APIType.completion, seed=3, run_id="r2"), 3, 4, 40, 10, seed=3
    )
    assert not set(next_run.prompts) & set(shared.prompts)  # no cache hit across runs
