from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from steps.config import APIType, DataType, LoadType, ServerType, config_from_dict, load_config
from steps.errors import UsageError


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


def test_packaged_baseline_scenario_equals_the_seed(seed_config_path: Path) -> None:
    packaged = Path(__file__).parents[3] / "steps" / "scenarios" / "baseline.yml"
    assert load_config(packaged) == load_config(seed_config_path)
