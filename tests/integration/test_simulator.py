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


def _completion(sim: SimulatorHandle, **fields: Any) -> dict[str, Any]:
    return {"model": sim.model, "prompt": "Say something.", **fields}


def test_simulator_completion_non_stream_shape_and_usage(simulator: SimulatorHandle) -> None:
    body = _completion(simulator, max_tokens=7, ignore_eos=True, return_token_ids=True)
    data = httpx.post(f"{simulator.base_url}/v1/completions", json=body, timeout=30).json()
    assert data["object"] == "text_completion"
    (choice,) = data["choices"]
    assert choice["finish_reason"] == "length"
    assert len(choice["token_ids"]) == 7
    assert data["usage"]["completion_tokens"] == 7
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + 7


def test_simulator_token_id_prompt_counted_exactly(simulator: SimulatorHandle) -> None:
    body = _completion(simulator, prompt=list(range(1000, 1512)), max_tokens=1)
    data = httpx.post(f"{simulator.base_url}/v1/completions", json=body, timeout=30).json()
    assert data["usage"]["prompt_tokens"] == 512


def test_simulator_chat_stream_role_then_content_then_usage(
    simulator: SimulatorHandle, qwen_tokenizer_dir: Path
) -> None:
    body = {
        "model": simulator.model,
        "messages": [{"role": "user", "content": "Hello world,"}],
        "max_tokens": 5,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    _, events = _stream(simulator, "/v1/chat/completions", body)
    assert events[-1] == "[DONE]"
    role, *content, usage = (json.loads(e) for e in events[:-1])
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in content)
    assert len(content) == 5
    assert "".join(c["choices"][0]["delta"]["content"] for c in content).startswith(" ")
    rendered = "<|im_start|>user\nHello world,<|im_end|>\n<|im_start|>assistant\n"
    tokenizer = Tokenizer.from_file(str(qwen_tokenizer_dir / "tokenizer.json"))
    prompt_tokens = len(tokenizer.encode(rendered, add_special_tokens=False).ids)
    assert usage["usage"] == {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + 5,
        "completion_tokens": 5,
    }


def test_simulator_chat_non_stream_message(simulator: SimulatorHandle) -> None:
    body = {
        "model": simulator.model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "ignore_eos": True,
    }
    data = httpx.post(f"{simulator.base_url}/v1/chat/completions", json=body, timeout=30).json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["usage"]["completion_tokens"] == 3


def test_simulator_without_ignore_eos_stops_at_seeded_point(simulator_factory: Any) -> None:
    def lengths(sim: SimulatorHandle) -> list[int]:
        out = []
        for _ in range(12):
            body = _completion(sim, max_tokens=40)
            out.append(
                httpx.post(f"{sim.base_url}/v1/completions", json=body, timeout=30).json()["usage"][
                    "completion_tokens"
                ]
            )
        return out

    flags = ("--ttft-ms", "0", "--itl-ms", "0", "--seed", "7")
    first = lengths(simulator_factory(*flags))
    assert all(1 <= n <= 40 for n in first)
    assert len(set(first)) > 1  # stops vary...
    assert lengths(simulator_factory(*flags)) == first  # ...reproducibly with the seed


def test_simulator_unknown_model_404_vllm_error(simulator: SimulatorHandle) -> None:
    body = _completion(simulator, model="nope")
    response = httpx.post(f"{simulator.base_url}/v1/completions", json=body, timeout=30)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == 404
    assert "nope" in error["message"]


def test_simulator_bad_json_400(simulator: SimulatorHandle) -> None:
    response = httpx.post(f"{simulator.base_url}/v1/completions", content=b"{nope", timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "BadRequestError"


def test_simulator_context_overflow_400(simulator: SimulatorHandle) -> None:
    body = _completion(simulator, prompt=[1] * 32000, max_tokens=1000)
    response = httpx.post(f"{simulator.base_url}/v1/completions", json=body, timeout=30)
    assert response.status_code == 400
    assert "maximum context length is 32768" in response.json()["error"]["message"]


def test_simulator_truth_records_request_and_resets(simulator_factory: Any) -> None:
    sim = simulator_factory("--ttft-ms", "20", "--itl-ms", "2", "--tokens-per-chunk", "3")
    body = _completion(sim, max_tokens=10, ignore_eos=True, stream=True)
    body["return_token_ids"] = True
    _, events = _stream(sim, "/v1/completions", body, **{"X-Request-Id": "run-0-42"})
    (record,) = sim.truth()
    assert record["request_id"] == "run-0-42"
    assert record["http_status"] == 200
    assert record["fault"] is None
    assert record["completion_tokens"] == 10
    assert record["chunk_tokens"] == [1, 3, 3, 3]
    per_chunk = [len(json.loads(e)["choices"][0]["token_ids"]) for e in events[:-1]]
    assert per_chunk == record["chunk_tokens"]
    assert record["prompt_tokens"] == 4  # "Say something." ~ 14 bytes / 4, no tokenizer
    times = record["chunk_wall_ns"]
    assert record["arrival_wall_ns"] + 20_000_000 <= times[0]
    assert times == sorted(times)
    sim.reset_truth()
    assert sim.truth() == []
