"""steps.simulator.server: bad requests are vLLM-style 4xx (asked over HTTP of a running
simulator); the latency level a run draws (from the Simulator object, no socket)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from steps.simulator.config import SimulatorConfig
from steps.simulator.server import Simulator
from steps.simulator.tokens import load_token_model
from tests.fixtures.simulator import StartSimulator


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_simulator_chat_template_refusing_messages_answers_400_vllm_style(
    simulator_factory: StartSimulator, tmp_path: Path, qwen_tokenizer_dir: Path
) -> None:
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_bytes((qwen_tokenizer_dir / "tokenizer.json").read_bytes())
    (tok / "chat_template.jinja").write_text("{{ raise_exception('roles must alternate') }}")
    sim = simulator_factory("--tokenizer", str(tok))
    response = httpx.post(
        f"{sim.base_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        timeout=10,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("BadRequestError", 400)
    assert "chat template cannot render" in error["message"]


def test_simulator_level_drift_is_one_seeded_level_per_run(loop: asyncio.AbstractEventLoop) -> None:
    def latency(seed: int, drift: float) -> tuple[float, float]:
        config = SimulatorConfig(ttft_ms=20.0, itl_ms=12.0, level_drift=drift, seed=seed)
        sim = Simulator(config, load_token_model(None), loop)
        return sim.latency.ttft_s, sim.latency.itl_s

    assert latency(1, 0.0) == (0.020, 0.012)  # off: the exact model
    ttft, itl = latency(1, 0.02)
    assert ttft != 0.020 and ttft / 0.020 == pytest.approx(itl / 0.012)  # one level for both
    assert latency(1, 0.02) == (ttft, itl) and latency(2, 0.02) != (ttft, itl)
