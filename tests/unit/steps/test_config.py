from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.errors import UsageError
from steps.load.config import (
    Config,
    DataType,
    ServerType,
    StorageConfig,
    config_from_dict,
    load_config,
    output_dir,
)
from steps.shared import APIType, LoadType


def test_load_config_seed_baseline_means_the_guide_scenario(seed_config_path: Path) -> None:
    cfg = load_config(seed_config_path)
    assert cfg.api.type is APIType.completion and cfg.api.streaming is True
    assert cfg.data.type is DataType.synthetic
    inp, out = cfg.data.input_distribution, cfg.data.output_distribution
    assert (inp.mean, inp.std_dev, inp.min, inp.max) == (512, 0, 512, 512)
    assert (out.mean, out.std_dev, out.min, out.max) == (128, 0, 128, 128)
    assert inp.is_fixed and out.is_fixed
    assert cfg.load.type is LoadType.constant
    assert [(s.rate, s.duration) for s in cfg.load.stages] == [(1, 300)]
    assert cfg.load.num_workers == 4
    assert cfg.server.type is ServerType.vllm
    assert cfg.server.model_name == "qwen3-8b"
    assert cfg.server.base_url == "http://qwen3-vllm.default:8000"
    assert cfg.server.ignore_eos is True
    assert cfg.tokenizer.pretrained_model_name_or_path == "Qwen/Qwen3-8B"
    s3 = cfg.storage.simple_storage_service
    assert s3 is not None
    assert (s3.bucket_name, s3.path) == ("inference-perf-results", "baseline-test/results")


def _seed(seed_config_path: Path) -> dict:
    return yaml.safe_load(seed_config_path.read_text())


def test_config_unknown_nested_key_names_path_and_allowed_keys(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["load"]["stages"][0]["rte"] = 2
    with pytest.raises(UsageError) as err:
        config_from_dict(data, "config.yml")
    msg = str(err.value)
    assert "load.stages[0].rte" in msg and "rate, duration" in msg
    assert "\n" not in msg


def test_config_bad_enum_value_lists_allowed_values(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["load"]["type"] = "burst"
    with pytest.raises(UsageError) as err:
        config_from_dict(data, "config.yml")
    msg = str(err.value)
    assert "load.type" in msg and "'constant'" in msg and "'poisson'" in msg and "'burst'" in msg


def test_config_non_positive_rate_rejected_with_path(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["load"]["stages"][0]["rate"] = 0
    with pytest.raises(UsageError, match=r"load\.stages\[0\]\.rate: .*greater than 0 \(got 0\)"):
        config_from_dict(data, "config.yml")


def test_config_inline_api_key_rejected_without_echoing_it(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["server"]["api_key"] = "sk-very-secret"
    with pytest.raises(UsageError) as err:
        config_from_dict(data, "config.yml")
    assert "api_key_env" in str(err.value)
    assert "sk-very-secret" not in str(err.value)


def test_config_distribution_mean_outside_bounds_rejected(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["data"]["input_distribution"]["mean"] = 600
    with pytest.raises(UsageError, match=r"data\.input_distribution: mean \(600\) must lie within"):
        config_from_dict(data, "config.yml")


def test_config_missing_server_is_named(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    del data["server"]
    with pytest.raises(UsageError, match="missing required key 'server'"):
        config_from_dict(data, "config.yml")


def test_load_config_invalid_yaml_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "c.yml"
    bad.write_text("load:\n  stages: [\n")
    with pytest.raises(UsageError, match=r"line \d+ is not valid YAML"):
        load_config(bad)


def test_packaged_baseline_scenario_equals_the_seed_without_its_s3_block(
    seed_config_path: Path,
) -> None:
    """The seed's S3 block is what the load step refuses (the report step uploads); its bucket
    and path are the workflow's defaults (test_params_defaults_match_seed_config)."""
    packaged = Path(__file__).parents[3] / "steps" / "scenarios" / "baseline.yml"
    seed = load_config(seed_config_path)
    assert load_config(packaged) == seed.model_copy(update={"storage": StorageConfig()})


def _storage(seed_config_path: Path, storage: dict[str, Any]) -> Config:
    data = _seed(seed_config_path)
    data["storage"] = storage
    return config_from_dict(data, "config.yml")


@pytest.mark.parametrize(
    ("storage", "needle"),
    [
        (
            {"simple_storage_service": {"bucket_name": "results"}},
            "storage.simple_storage_service: the load step writes local files only; results "
            "reach S3 through the report step",
        ),
        (
            {"google_cloud_storage": {"bucket_name": "results"}},
            "storage.google_cloud_storage: the load step writes local files only",
        ),
        (
            {"local_storage": {"path": "x", "report_file_prefix": "run1"}},
            "storage.local_storage.report_file_prefix: the load step's file names are fixed",
        ),
    ],
)
def test_output_dir_storage_the_load_step_cannot_honour_refused_by_name(
    seed_config_path: Path, storage: dict[str, Any], needle: str, tmp_path: Path
) -> None:
    config = _storage(seed_config_path, storage)
    for out in (None, tmp_path):
        with pytest.raises(UsageError) as err:
            output_dir(config, out)
        assert needle in str(err.value) and "\n" not in str(err.value)


def test_output_dir_local_storage_path_is_the_default_out(
    seed_config_path: Path, tmp_path: Path
) -> None:
    config = _storage(seed_config_path, {"local_storage": {"path": str(tmp_path / "res")}})
    assert output_dir(config, None) == tmp_path / "res"
    assert output_dir(config, tmp_path / "res" / ".." / "res") == tmp_path / "res" / ".." / "res"


def test_output_dir_out_differing_from_local_storage_path_refused_naming_both(
    seed_config_path: Path, tmp_path: Path
) -> None:
    config = _storage(seed_config_path, {"local_storage": {"path": "res"}})
    with pytest.raises(UsageError) as err:
        output_dir(config, tmp_path / "other")
    assert str(err.value) == (
        f"--out {tmp_path / 'other'} and storage.local_storage.path res differ; give one of them"
    )


def test_output_dir_local_storage_without_path_yields_to_out(
    seed_config_path: Path, tmp_path: Path
) -> None:
    config = _storage(seed_config_path, {"local_storage": {}})
    assert output_dir(config, tmp_path) == tmp_path
    assert output_dir(config, None) == Path("reports")  # inference-perf's default


def test_output_dir_neither_out_nor_local_storage_refused(seed_config_path: Path) -> None:
    config = _storage(seed_config_path, {})
    with pytest.raises(UsageError, match=r"^no output directory: pass --out DIR or set storage"):
        output_dir(config, None)


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://vllm:8000/v1?api_key=SECRET-123", "must not have a query string or fragment"),
        ("http://vllm:8000/?token=SECRET-123", "must not have a query string or fragment"),
        ("http://vllm:8000/#SECRET-123", "must not have a query string or fragment"),
        ("http://user:SECRET-123@vllm:8000", "must not hold credentials (user:password@)"),
        ("http://vllm:8000/my path", "must not contain spaces or control characters"),
        ("http://vllm:8000/a\tb", "must not contain spaces or control characters"),
        ("http://vllm:8000/a%zz", "has characters a request line cannot carry"),
        ("http://vllm:8000/a<b>", "has characters a request line cannot carry"),
        ("ftp://vllm:8000", "must be http(s)://host[:port][/path]"),
    ],
)
def test_config_base_url_refused_in_one_line_without_the_secret(
    seed_config_path: Path, base_url: str, message: str
) -> None:
    data = _seed(seed_config_path)
    data["server"]["base_url"] = base_url
    with pytest.raises(UsageError) as err:
        config_from_dict(data, "config.yml")
    text = str(err.value)
    assert text.startswith("config.yml: server.base_url: ") and message in text
    assert "SECRET-123" not in text and "\n" not in text


def test_config_base_url_with_path_prefix_and_port_accepted(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["server"]["base_url"] = "https://gw.example:8443/llm/qwen-3_8b%2Fv1/"
    assert config_from_dict(data).server.base_url == data["server"]["base_url"]


@pytest.mark.parametrize(
    "name", ["../../etc", ".", "..", "x/./y", "x//y", "/abs", "x/", "a\x00b", "a\nb", "a\\b"]
)
def test_config_model_name_that_is_a_path_trick_refused(seed_config_path: Path, name: str) -> None:
    data = _seed(seed_config_path)
    data["server"]["model_name"] = name
    with pytest.raises(UsageError, match=r"server\.model_name: model name"):
        config_from_dict(data, "config.yml")


def test_config_model_name_with_org_accepted(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["server"]["model_name"] = "Qwen/Qwen3-8B"
    assert config_from_dict(data).server.model_name == "Qwen/Qwen3-8B"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("load", "stages", 0, "rate"), float("inf"), r"load\.stages\[0\]\.rate: .*finite"),
        (("load", "stages", 0, "rate"), float("nan"), r"load\.stages\[0\]\.rate: .*finite"),
        (("load", "stages", 0, "rate"), True, r"load\.stages\[0\]\.rate: must be a number, not"),
        (("load", "num_workers"), True, r"load\.num_workers: must be a number, not a boolean"),
        (("load", "stages", 0, "duration"), 1e12, r"load\.stages\[0\]\.duration: .*604800"),
        (("load", "request_timeout"), float("inf"), r"load\.request_timeout: .*finite"),
        (("load", "request_timeout"), 2101, r"load\.request_timeout: .*less than or equal to 2100"),
        (("load", "drain_timeout"), 2101, r"load\.drain_timeout: .*less than or equal to 2100"),
        (("load", "stages"), [{"rate": 1, "duration": 1}] * 1001, r"load\.stages: .*at most 1000"),
        (("load", "stages", 0, "rate"), 4000.0, r"load\.stages: asks for 1\.2e\+06 requests"),
        (("load", "warmup_requests"), 10**9, r"load\.stages: asks for 1e\+09 requests"),
    ],
)
def test_config_bounds_refused_naming_the_key(
    seed_config_path: Path, path: tuple[str | int, ...], value: object, message: str
) -> None:
    data = _seed(seed_config_path)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(UsageError, match=message) as err:
        config_from_dict(data, "config.yml")
    assert "\n" not in str(err.value)


def _exact(tokens: int) -> dict[str, int | str]:
    return {"type": "fixed", "mean": tokens, "std_dev": 0, "min": tokens, "max": tokens}


def test_config_prompt_too_long_for_any_server_refused(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)
    data["data"]["input_distribution"] = _exact(10**7)
    with pytest.raises(UsageError, match=r"data\.input_distribution\.max: .*1048576"):
        config_from_dict(data, "config.yml")


def test_config_prompts_too_many_tokens_to_build_refused(seed_config_path: Path) -> None:
    data = _seed(seed_config_path)  # 300 requests
    data["data"]["input_distribution"] = _exact(1_000_000)
    with pytest.raises(UsageError, match=r"data\.input_distribution\.max: 300 prompts of up to"):
        config_from_dict(data, "config.yml")


def test_load_config_binary_file_is_one_usage_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(UsageError, match=r"^--config .*config\.yml: not a UTF-8 text file"):
        load_config(path)


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (
            {"type": "concurrent", "stages": [{"rate": 1, "duration": 2}]},
            r"load: stages\[0\]: type concurrent takes num_requests and concurrency_level",
        ),
        (
            {"stages": [{"num_requests": 4, "concurrency_level": 2}]},
            r"load: stages\[0\]: type constant takes rate and duration",
        ),
        (
            {
                "type": "concurrent",
                "stages": [{"num_requests": 4, "concurrency_level": 2, "rate": 1}],
            },
            r"unknown key 'load\.stages\[0\]\.rate'; allowed here: num_requests, "
            r"concurrency_level$",
        ),
        (
            {"type": "concurrent", "stages": [{"num_requests": 0, "concurrency_level": 2}]},
            r"load\.stages\[0\]\.num_requests: .*greater than or equal to 1",
        ),
        (
            {"type": "closed", "stages": []},
            r"load\.type: must be 'constant', 'poisson' or 'concurrent', not 'closed'",
        ),
        ({"stages": []}, r"load: stages: at least one stage is needed \(or a sweep\)"),
        ({"stages": [], "sweep": {"num_stages": 3}}, r"missing required key 'load\.sweep\.type'"),
        (
            {"stages": [], "sweep": {"type": "exponential"}},
            r"load\.sweep\.type: Input should be 'linear' or 'geometric'",
        ),
        (
            {"stages": [], "sweep": {"type": "linear", "saturation_percentile": 101}},
            r"load\.sweep\.saturation_percentile: .*less than or equal to 100",
        ),
        (
            {"stages": [], "sweep": {"type": "linear", "timeout": 0}},
            r"load\.sweep\.timeout: .*greater than 0",
        ),
        (
            {"stages": [], "sweep": {"type": "linear", "num_requests": 1}},
            r"load\.sweep\.num_requests: .*greater than or equal to 2",
        ),
        (
            {"stages": [], "sweep": {"type": "linear", "estimator": "guess"}},
            r"load\.sweep\.estimator: Input should be 'ladder' or 'burst'",
        ),
        (
            {
                "type": "concurrent",
                "stages": [{"num_requests": 4, "concurrency_level": 2}],
                "sweep": {"type": "linear"},
            },
            r"load: sweep: not with type concurrent",
        ),
    ],
)
def test_config_closed_loop_and_sweep_errors_are_one_line(
    seed_config_path: Path, load: dict[str, Any], message: str
) -> None:
    data = _seed(seed_config_path)
    data["load"] = load
    with pytest.raises(UsageError, match=message) as err:
        config_from_dict(data, "config.yml")
    assert "\n" not in str(err.value)


def test_config_sweep_without_stages_takes_inference_perfs_defaults(
    seed_config_path: Path,
) -> None:
    data = _seed(seed_config_path)
    data["load"] = {"stages": [], "sweep": {"type": "geometric"}}
    sweep = config_from_dict(data).load.sweep
    assert sweep is not None
    assert (sweep.num_requests, sweep.timeout, sweep.num_stages) == (2000, 60, 5)
    assert (sweep.stage_duration, sweep.saturation_percentile) == (180, 95)


def test_packaged_sweep_scenario_is_the_guides_s3() -> None:
    config = load_config(Path(__file__).parents[3] / "steps" / "scenarios" / "sweep.yml")
    sweep = config.load.sweep
    assert sweep is not None and config.load.stages == []
    assert (sweep.type.value, sweep.num_requests, sweep.timeout) == ("geometric", 2000, 60)
    assert (sweep.num_stages, sweep.stage_duration, sweep.saturation_percentile) == (5, 180, 95)
    assert config.load.num_workers == 8
    inp, out = config.data.input_distribution, config.data.output_distribution
    assert (inp.mean, inp.std_dev, inp.min, inp.max) == (512, 128, 128, 2048)
    assert (out.mean, out.std_dev, out.min, out.max) == (256, 64, 32, 512)


_PACKAGED = sorted((Path(__file__).parents[3] / "steps" / "scenarios").glob("*.yml"))


@pytest.mark.parametrize("path", _PACKAGED, ids=[p.stem for p in _PACKAGED])
def test_every_packaged_scenario_loads(path: Path) -> None:
    config = load_config(path)
    assert config.load.stages or config.load.sweep is not None


def test_the_guides_complete_example_is_packaged() -> None:
    # Its raw-YAML variant of production simulation: Poisson 10 QPS x 300 s, 512±128 / 256±64.
    config = load_config(Path(__file__).parents[3] / "steps" / "scenarios" / "complete-example.yml")
    assert config.load.type is LoadType.poisson
    assert [(s.rate, s.duration) for s in config.load.stages] == [(10, 300)]
    assert config.load.num_workers == 4
    data = config.data
    assert (data.input_distribution.mean, data.input_distribution.std_dev) == (512, 128)
    assert (data.output_distribution.mean, data.output_distribution.std_dev) == (256, 64)
