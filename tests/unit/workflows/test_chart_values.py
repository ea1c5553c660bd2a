"""Benchmark chart values layout -> knobs: -f files, --set paths, unknown keys."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from steps.errors import UsageError
from workflows.chart_values import load_values, map_values

SEED_VALUES = """\
benchmark:
  scenario: baseline
  target:
    baseUrl: http://your-model.your-namespace:8000
    modelName: your-model-name
  scenarios:
    baseline:
      load:
        stages:
          - rate: 1
            duration: 600  # Longer test
"""


def test_map_values_seed_values_file_maps_knobs(tmp_path: Path) -> None:
    path = tmp_path / "my-values.yaml"
    path.write_text(SEED_VALUES)
    mapping = map_values(load_values([path], []))
    assert mapping.params == {
        "base_url": "http://your-model.your-namespace:8000",
        "model_name": "your-model-name",
        "rate": 1,
        "duration": 600,
    }


def test_map_values_guide_set_flags_map_knobs() -> None:
    sets = [
        "benchmark.scenario=baseline",
        "benchmark.target.baseUrl=http://qwen3-vllm.default:8000",
        "benchmark.target.modelName=qwen3-8b",
        "benchmark.target.tokenizerPath=Qwen/Qwen3-8B",
        "benchmark.scenarios.baseline.load.stages[0].duration=600",
    ]
    assert map_values(load_values([], sets)).params == {
        "base_url": "http://qwen3-vllm.default:8000",
        "model_name": "qwen3-8b",
        "tokenizer": "Qwen/Qwen3-8B",
        "duration": 600,
    }


def test_set_overrides_file_and_keeps_stage_rate(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(SEED_VALUES)
    values = load_values([path], ["benchmark.scenarios.baseline.load.stages[0].duration=60"])
    assert map_values(values).params["rate"] == 1
    assert map_values(values).params["duration"] == 60


def test_map_values_affinity_storage_and_options() -> None:
    values = {
        "benchmark": {
            "namespace": "bench",
            "affinity": {"targetLabels": {"app.kubernetes.io/component": "x"}},
            "storage": {"s3": {"bucketName": "my-bucket", "pathPrefix": "p"}},
            "image": {"tag": "v0.2.0"},
            "scenarios": {"baseline": {"data": {"input": {"mean": 1024, "stdDev": 0}}}},
        }
    }
    mapping = map_values(values)
    assert mapping.params == {
        "target_labels": "app.kubernetes.io/component=x",
        "bucket": "my-bucket",
        "path": "p",
        "input_tokens": 1024,
    }
    assert mapping.options == {"namespace": "bench"}
    assert mapping.ignored == ["benchmark.image.tag"]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("benchmark.target.baseURL=x", "unknown key 'benchmark.target.baseURL'"),
        ("benchmark.resources.main.requests.cpu=4", ""),
        ("benchmark.scenario=stress", "benchmark.scenario='stress' is not supported: this"),
        ("benchmark.config=x", "benchmark.config must be an inference-perf config"),
        ("benchmark.api.streaming=false", "TTFT and ITL need streaming"),
        ("benchmark.scenarios.baseline.data.input.stdDev=128", "exact lengths"),
        ("benchmark.scenarios.baseline.load.stages[1].rate=5", "exactly one stage"),
        ("benchmark.scenarios.baseline.load.stages[0].qps=5", "unknown key"),
        ("benchmark.bogus=1", "unknown key 'benchmark.bogus'"),
    ],
)
def test_map_values_bad_or_unknown_key_names_it(assignment: str, message: str) -> None:
    values = load_values([], [assignment])
    if not message:  # the guide's resources.main key: a chart-only block, ignored here
        assert map_values(values).ignored == ["benchmark.resources"]
        return
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        map_values(values)


def test_other_scenarios_accepted_but_unused() -> None:
    values = load_values([], ["benchmark.scenarios.saturation.load.numWorkers=8"])
    assert map_values(values).params == {}


def test_load_values_bad_yaml_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("benchmark: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_values([path], [])


def test_set_without_equals_is_usage_error() -> None:
    with pytest.raises(UsageError, match="expected key=value"):
        load_values([], ["benchmark.target.baseUrl"])


def test_set_list_index_above_the_bound_is_refused_naming_it() -> None:
    with pytest.raises(UsageError, match=r"list index \[100\] is out of range \(at most 99\)"):
        load_values([], ["benchmark.scenarios.baseline.load.stages[100].rate=5"])


def test_set_huge_list_index_allocates_nothing() -> None:
    """The issue's repro, in a child whose address space is capped at 1 GiB: padding the list
    to 300,000,000 entries (8.8 GB) would die with MemoryError there instead of one line."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from workflows.chart_values import load_values\n"
        "from steps.errors import UsageError\n"
        "try:\n"
        "    load_values([], ['benchmark.scenarios.baseline.load.stages[300000000].rate=5'])\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-300:]
    assert "list index [300000000] is out of range" in done.stdout


def test_values_file_that_is_binary_is_one_usage_line(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(UsageError, match=r"^-f .*values.yaml: not a UTF-8 text file"):
        load_values([path], [])


SATURATION_VALUES = """\
benchmark:
  scenario: saturation
  scenarios:
    baseline:
      data: {input: {mean: 512, stdDev: 0, min: 512, max: 512}}
    saturation:
      description: "S2"
      data:
        input: {mean: 600, stdDev: 100, min: 200, max: 1000}
        output: {mean: 200, stdDev: 50, min: 20, max: 400}
      load:
        type: constant
        numWorkers: 6
        stages: [{rate: 2, duration: 120}, {rate: 4.5, duration: 120}]
"""


def test_map_values_saturation_scenario_maps_its_block_to_its_knobs(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(SATURATION_VALUES)
    mapping = map_values(load_values([path], []))
    assert mapping.params == {
        "scenario": "saturation",
        "input_mean": 600,
        "input_std_dev": 100,
        "input_min": 200,
        "input_max": 1000,
        "output_mean": 200,
        "output_std_dev": 50,
        "output_min": 20,
        "output_max": 400,
        "load_type": "constant",
        "num_workers": 6,
        "stages": "2x120,4.5x120",
    }
    # The baseline's block is the chart's too, but not the selected one: not mapped.
    assert "benchmark.scenarios.baseline.data.input.stdDev" in mapping.ignored


def test_map_values_scenario_flag_wins_over_the_values_scenario(tmp_path: Path) -> None:
    values = load_values([], ["benchmark.scenario=saturation"])
    values["benchmark"]["scenarios"] = {
        "production": {"load": {"stages": [{"rate": 9, "duration": 60}]}}
    }
    assert map_values(values, "production").params == {"stages": "9x60"}


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("{rate: 1, duration: 2.5}", "stages[0].duration=2.5: whole seconds only"),
        ("{rate: 1}", "stages[0] must be {rate, duration}"),
        ("{rate: fast, duration: 2}", "rate and duration must be numbers"),
    ],
)
def test_map_values_staged_stage_refused_naming_it(
    stage: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(
        f"benchmark:\n  scenario: production\n  scenarios:\n    production:\n"
        f"      load:\n        stages: [{stage}]\n"
    )
    with pytest.raises(UsageError, match=re.escape(message)):
        map_values(load_values([path], []))


def test_map_values_chart_config_selects_the_config_scenario(tmp_path: Path) -> None:
    """Chart 0.2.x: benchmark.config replaces the generated config (the scenario blocks are
    unused); the endpoint and storage keys still apply."""
    path = tmp_path / "v.yaml"
    path.write_text(
        "benchmark:\n  target: {baseUrl: 'http://m:8000'}\n"
        "  scenarios: {baseline: {load: {stages: [{rate: 2, duration: 60}]}}}\n"
        "  config:\n    load: {type: poisson, stages: [{rate: 3, duration: 30}]}\n"
        "    server: {base_url: 'http://m:8000'}\n"
    )
    params = map_values(load_values([path], [])).params
    assert params.pop("config").splitlines() == [
        "load:", "  type: poisson", "  stages:", "  - rate: 3", "    duration: 30",
        "server:", "  base_url: http://m:8000",
    ]  # fmt: skip
    assert params == {"scenario": "config", "base_url": "http://m:8000"}


def test_map_values_chart_config_null_is_the_charts_default() -> None:
    assert map_values({"benchmark": {"config": None}}).params == {}


SWEEP_VALUES = """
benchmark:
  scenario: sweep
  scenarios:
    sweep:
      description: automatic saturation detection
      data:
        input: {mean: 512, stdDev: 128, min: 128, max: 2048}
        output: {mean: 256, stdDev: 64, min: 32, max: 512}
      load:
        type: constant
        numWorkers: 8
        stages: []
        sweep:
          type: geometric
          numRequests: 3000
          timeout: 90
          numStages: 7
          stageDuration: 240
          saturationPercentile: 99
"""


def test_map_values_sweep_scenario_maps_the_charts_sweep_block(tmp_path: Path) -> None:
    """The guide's "customize" values for S3 (numRequests 3000, timeout 90, 7 stages x 240 s,
    p99) select the sweep template and become its probe's knobs."""
    path = tmp_path / "v.yaml"
    path.write_text(SWEEP_VALUES)
    mapping = map_values(load_values([path], []))
    assert mapping.params["scenario"] == "sweep"
    sweep = {k: v for k, v in mapping.params.items() if k.startswith("sweep_")}
    assert sweep == {
        "sweep_type": "geometric",
        "sweep_num_requests": 3000,
        "sweep_timeout": 90,
        "sweep_num_stages": 7,
        "sweep_stage_duration": 240,
        "sweep_saturation_percentile": 99,
    }
    assert (mapping.params["num_workers"], mapping.params["input_std_dev"]) == (8, 128)
    assert "stages" not in mapping.params


def test_map_values_sweep_scenario_with_stages_refused_naming_the_key() -> None:
    values = load_values(
        [], ["benchmark.scenario=sweep", "benchmark.scenarios.sweep.load.stages[0].rate=5"]
    )
    with pytest.raises(UsageError, match=r"scenarios\.sweep\.load\.stages: the sweep's stages"):
        map_values(values)
