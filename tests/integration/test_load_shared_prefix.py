"""data.type shared_prefix against the simulator: every request's prompt is its group's prefix
plus a question, exactly as long as planned when the server counts it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from steps.load.__main__ import main

StartSimulator = Any


def test_load_shared_prefix_prompts_exact_as_served(
    simulator_factory: StartSimulator, qwen_tokenizer_dir: Path, tmp_path: Path
) -> None:
    sim = simulator_factory(
        "--ttft-ms", "5", "--itl-ms", "1", "--tokenizer", str(qwen_tokenizer_dir),
        "--enable-prompt-tokens-details", "true",
    )  # fmt: skip
    config = tmp_path / "shared.yml"
    config.write_text(
        "data:\n  type: shared_prefix\n"
        "  shared_prefix: {num_groups: 2, num_prompts_per_group: 3, system_prompt_len: 60,"
        " question_len: 12, output_len: 9}\n"
        "load: {type: constant, stages: [{rate: 6, duration: 2}], num_workers: 2}\n"
        "server: {base_url: 'http://unused:1', model_name: Qwen/Qwen3-8B}\n"
    )
    out = tmp_path / "out"
    argv = ["--config", str(config), "--out", str(out), "--base-url", sim.base_url]
    assert main([*argv, "--tokenizer-dir", str(qwen_tokenizer_dir)]) == 0
    rows = pq.read_table(out / "records.parquet").to_pylist()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert {(r["prompt_tokens"], r["prompt_tokens_source"]) for r in rows} == {(72, "server")}
    assert {r["requested_input_tokens"] for r in rows} == {72}
    assert {r["output_tokens"] for r in rows} == {9}
    assert {r["cached_tokens"] for r in rows} == {0}  # the simulator says: no prefix cache
