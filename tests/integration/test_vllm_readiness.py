"""The readiness step against a real vLLM server: it finds the served model, and a wrong name
fails with the models vLLM actually serves (the message users see when --model-name is off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.readiness.__main__ import main
from tests.fixtures.vllm import MAX_MODEL_LEN, VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


def test_readiness_served_model_exits_0_with_outputs(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    code = main(
        [
            "--base-url",
            vllm_server.base_url,
            "--model-name",
            vllm_server.model_name,
            "--timeout",
            "60",
            "--k8s-check",
            "off",
            "--outputs-dir",
            str(tmp_path),
        ]
    )

    assert code == 0
    assert (tmp_path / "served_model").read_text() == vllm_server.model_name
    assert (tmp_path / "max_model_len").read_text() == str(MAX_MODEL_LEN)


def test_readiness_wrong_model_name_exits_1_listing_served(
    vllm_server: VllmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--base-url",
            vllm_server.base_url,
            "--model-name",
            "Qwen/Qwen3-8B",
            "--timeout",
            "3",
            "--interval",
            "1",
            "--k8s-check",
            "off",
        ]
    )

    assert code == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines[-1].startswith("readiness: ")
    assert "'Qwen/Qwen3-8B'" in err_lines[-1]
    assert f"'{vllm_server.model_name}'" in err_lines[-1]
