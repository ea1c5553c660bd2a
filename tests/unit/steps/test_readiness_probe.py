"""Readiness probe: backoff schedule, /v1/models parsing, one probe over an httpx seam."""

from __future__ import annotations

import itertools

import httpx
import pytest

from steps.errors import BenchError
from steps.readiness.probe import ServedModel, check_once, poll_delays, served_model
from steps.readiness.warmup import run_warmup


def test_poll_delays_start_small_double_and_cap_at_interval() -> None:
    assert list(itertools.islice(poll_delays(8.0), 6)) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


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


def test_check_once_garbled_gzip_body_is_not_ready_not_a_traceback() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    transport = httpx.MockTransport(handler)
    with httpx.Client(base_url="http://server", transport=transport) as client:
        result = check_once(client, "m", 1.0)
    assert result.model is None and result.missing.startswith("/health: no answer (")


def test_run_warmup_error_body_echoing_the_key_is_scrubbed() -> None:
    key = "sk-test-0123456789abcdefXYZ"

    def handler(request: httpx.Request) -> httpx.Response:
        # A server that echoes the request's Authorization header in its error body.
        return httpx.Response(401, text=f"bad token {request.headers['Authorization']}")

    transport = httpx.MockTransport(handler)
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url="http://server", transport=transport, headers=headers) as client,
        pytest.raises(BenchError) as err,
    ):
        run_warmup(client, "m", 1, 5.0)
    assert "HTTP 401" in str(err.value)
    assert key not in str(err.value)
