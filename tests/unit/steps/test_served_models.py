"""steps.served_models: parsing a `/v1/models` answer (shared by readiness and the load step)."""

from __future__ import annotations

import pytest

from steps.served_models import ServedModel, served_model


def test_served_model_vllm_body_gives_max_model_len() -> None:
    body = {
        "object": "list",
        "data": [
            {"id": "lora-a", "object": "model"},
            {"id": "Qwen/Qwen3-8B", "object": "model", "max_model_len": 40960},
        ],
    }
    model, served = served_model(body, "Qwen/Qwen3-8B")
    assert model == ServedModel("Qwen/Qwen3-8B", 40960)
    assert served == ("lora-a", "Qwen/Qwen3-8B")


def test_served_model_missing_model_lists_served_ids() -> None:
    model, served = served_model({"data": [{"id": "foo", "max_model_len": True}]}, "bar")
    assert model is None
    assert served == ("foo",)


def test_served_model_without_max_model_len_is_unknown() -> None:
    model, _ = served_model({"data": [{"id": "foo", "max_model_len": True}]}, "foo")
    assert model == ServedModel("foo", None)


@pytest.mark.parametrize("body", [[], {"data": "x"}, {"models": []}])
def test_served_model_bad_body_raises_value_error(body: object) -> None:
    with pytest.raises(ValueError, match="no 'data' list"):
        served_model(body, "foo")
