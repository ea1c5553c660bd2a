"""Workflow parameter validation: `render`/`run`/`submit` refuse what the steps would refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from steps.errors import UsageError
from steps.load.config import load_config
from steps.report.history import DEFAULT_WINDOW
from steps.summary_model import SLA_METRIC_NAMES
from workflows.params import BaselineParams, params_from_mapping


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": "inf"}, "parameters: rate: Input should be a finite number (got 'inf')"),
        ({"rate": "nan"}, "parameters: rate: Input should be a finite number (got 'nan')"),
        ({"rate": True}, "parameters: rate: must be a number, not a boolean (got True)"),
        ({"num_workers": True}, "parameters: num_workers: must be a number, not a boolean"),
        ({"request_timeout": "inf"}, "parameters: request_timeout: Input should be a finite"),
        ({"request_timeout": 2101}, "parameters: request_timeout: Input should be less than or"),
        ({"duration": 10**12}, "parameters: duration: Input should be less than or equal to"),
        ({"rate": 1000, "duration": 3600}, "parameters: rate, duration: asks for 3.6e+06"),
        ({"input_tokens": 10**7}, "parameters: input_tokens: Input should be less than or equal"),
        ({"input_tokens": 10**6, "duration": 600}, "parameters: input_tokens: 600 prompts"),
        ({"model_name": "../../etc"}, "parameters: model_name: model name '../../etc' must be"),
        ({"model_name": "x/./y"}, "parameters: model_name: model name 'x/./y' must be"),
        ({"bucket": "Not_A_Bucket"}, "parameters: bucket: String should match pattern"),
        ({"s3_endpoint_url": "not a url"}, "parameters: s3_endpoint_url: S3 endpoint must be"),
        ({"slo_ttft_ms": 0}, "parameters: slo_ttft_ms: Input should be greater than 0 (got 0)"),
        ({"slo_e2e_ms": "inf"}, "parameters: slo_e2e_ms: Input should be a finite number"),
        ({"regression_tolerance": -0.1}, "parameters: regression_tolerance: Input should be"),
        ({"history_window": 0}, "parameters: history_window: Input should be greater than or"),
        ({"history_window": "2.5"}, "parameters: history_window: Input should be a valid int"),
    ],
)
def test_params_out_of_bounds_one_line_naming_the_knob(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as err:
        params_from_mapping(values, "parameters")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://qwen3-vllm.default:8000/?key=SECRET-123",
        "http://qwen3-vllm.default:8000/v1#SECRET-123",
        "http://me:SECRET-123@qwen3-vllm.default:8000",
    ],
)
def test_params_base_url_with_a_credential_refused_without_echoing_it(base_url: str) -> None:
    with pytest.raises(UsageError) as err:
        params_from_mapping({"base_url": base_url}, "parameters")
    assert str(err.value).startswith("parameters: base_url: base_url must not")
    assert "SECRET-123" not in str(err.value)


def test_params_base_url_space_in_path_refused() -> None:
    with pytest.raises(UsageError, match="must not contain spaces"):
        params_from_mapping({"base_url": "http://h:8000/my model"}, "parameters")


def test_params_argo_strings_still_parse() -> None:
    params = params_from_mapping(
        {"rate": "2.5", "duration": "60", "input_tokens": "1024", "fail_on_breach": "true"}, "p"
    )
    assert (params.rate, params.duration, params.input_tokens) == (2.5, 60, 1024)
    assert params.fail_on_breach is True
    assert BaselineParams().to_arguments()["rate"] == "1"


def test_params_empty_optional_knobs_are_unset_and_stay_empty_for_argo() -> None:
    """The UI leaves an optional knob as "": no SLO bound, the report's own window and
    per-metric tolerances (a number would override every relative one)."""
    empty = {"slo_ttft_ms": "", "slo_tpot_ms": "", "regression_tolerance": "", "history_window": ""}
    params = params_from_mapping(empty, "p")
    assert (params.slo_ttft_ms, params.regression_tolerance, params.history_window) == (None,) * 3
    assert {name: params.to_arguments()[name] for name in empty} == empty
    assert params_from_mapping({"slo_tpot_ms": "12.5"}, "p").to_arguments()["slo_tpot_ms"] == "12.5"


def test_history_window_description_names_the_reports_default() -> None:
    # params cannot import the report step: its default is written in the description.
    assert BaselineParams.descriptions()["history_window"].endswith(f"empty = {DEFAULT_WINDOW}")


def test_sla_knobs_are_the_reports_sla_metrics() -> None:
    """One `sla_<metric>` knob per metric an SLA may bound (steps.summary_model names them once):
    a metric added there without a knob here (or a knob the report has no flag for) fails."""
    knobs = [name for name in BaselineParams.model_fields if name.startswith("sla_")]
    assert knobs == [f"sla_{name}" for name in SLA_METRIC_NAMES]


def test_params_defaults_match_seed_config(seed_config_path: Path) -> None:
    seed = load_config(seed_config_path)
    params = BaselineParams()
    storage = seed.storage.simple_storage_service
    assert storage is not None
    assert (params.base_url, params.model_name) == (seed.server.base_url, seed.server.model_name)
    assert params.tokenizer == seed.tokenizer.pretrained_model_name_or_path
    assert (params.rate, params.duration) == (
        seed.load.stages[0].rate,
        seed.load.stages[0].duration,
    )
    assert params.input_tokens == seed.data.input_distribution.mean
    assert params.output_tokens == seed.data.output_distribution.mean
    assert params.num_workers == seed.load.num_workers
    assert params.load_type.value == seed.load.type.value
    assert (params.bucket, params.path) == (storage.bucket_name, storage.path)
