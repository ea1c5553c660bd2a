"""The real simulator process over HTTP: response shapes, token accounting, truth, queueing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from tokenizers import Tokenizer

from tests.fixtures.simulator import SimulatorHandle


def _events(response: httpx.Response) -> list[str]:
    """SSE `data:` payloads in order (the raw strings, [DONE] included)."""
    return [
        line.removeprefix("data: ")
        for line in response.text.split("\n\n")
        if line.startswith("data: ")
    ]


def _stream(
    sim: SimulatorHandle, path: str, body: dict[str, Any], **headers: str
) -> tuple[httpx.Response, list[str]]:
    response = httpx.post(f"{sim.base_url}{path}", json=body, headers=headers, timeout=30)
    return response, _events(response)


def test_simulator_health_and_models_vllm_shape(simulator: SimulatorHandle) -> None:
    assert httpx.get(f"{simulator.base_url}/health").status_code == 200
    models = httpx.get(f"{simulator.base_url}/v1/models").json()
    assert models["object"] == "list"
    (card,) = models["data"]
    assert card["id"] == simulator.model
    assert card["object"] == "model"
    assert card["max_model_len"] == 32768


def test_simulator_completion_stream_usage_chunk_and_token_ids(
    simulator: SimulatorHandle,
) -> None:
    body = {
        "model": simulator.model,
        "prompt": "Hello world, this is a prompt.",
        "max_tokens": 128,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
    }
    response, events = _stream(simulator, "/v1/completions", body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    *content, usage_chunk = chunks
    assert len(content) == 128
    assert all(c["object"] == "text_completion" for c in chunks)
    assert sum(len(c["choices"][0]["token_ids"]) for c in content) == 128
    assert [c["choices"][0]["finish_reason"] for c in content[-2:]] == [None, "length"]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 128


def test_simulator_text_prompt_counts_exactly_with_tokenizer(
    simulator: SimulatorHandle, qwen_tokenizer_dir: Path
) -> None:
    prompt = "Hello world, the quick brown fox jumps over 12345 lazy dogs."
    tokenizer = Tokenizer.from_file(str(qwen_tokenizer_dir / "tokenizer.json"))
    expected = len(tokenizer.encode(prompt).ids)
    response = httpx.post(
        f"{simulator.base_url}/v1/completions",
        json={"model": simulator.model, "prompt": prompt, "max_tokens": 2},
        timeout=30,
    )
    assert response.json()["usage"]["prompt_tokens"] == expected
