"""One WorkflowTemplate per scenario: its parameters are exactly its knobs, its defaults are
its packaged config's, its load task gets every knob, and a knob it lacks is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.stage_spec import parse_stages
from tests.helpers.argo.rendered import limit_seconds, template_named
from tests.helpers.dockerfile_targets import REPO
from workflows.baseline import main
from workflows.scenarios import SCENARIOS, STAGED_KNOBS, ScenarioName


def _render(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    assert main(["render", *argv], {}) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]


def _parameters(manifest: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}


@pytest.mark.parametrize("scenario", ["saturation", "production"])
def test_staged_template_has_its_knobs_and_its_packaged_defaults(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (template,) = _render(capsys, "--scenario", scenario)
    assert template["metadata"]["name"] == f"llm-baseline-{scenario}"
    params = _parameters(template)
    assert set(STAGED_KNOBS) <= set(params)
    assert not {"rate", "duration", "input_tokens", "output_tokens"} & set(params)
    packaged = yaml.safe_load((REPO / "steps" / "scenarios" / f"{scenario}.yml").read_text())
    stages = [(float(s["rate"]), int(s["duration"])) for s in packaged["load"]["stages"]]
    assert parse_stages(params["stages"]) == tuple(stages)
    assert params["num_workers"] == str(packaged["load"]["num_workers"])
    assert params["load_type"] == packaged["load"]["type"]
    assert float(params["input_std_dev"]) == packaged["data"]["input_distribution"]["std_dev"]
    assert int(params["output_max"]) == packaged["data"]["output_distribution"]["max"]


def test_staged_load_task_gets_the_scenario_and_every_knob_as_a_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (template,) = _render(capsys, "--scenario", "saturation", "--stages", "1x60,2x60")
    args = template_named(template, "load")["container"]["args"]
    assert args[args.index("--scenario") + 1] == "saturation"  # base config and history name
    for knob in STAGED_KNOBS:
        flag = "--" + knob.replace("_", "-")
        assert args[args.index(flag) + 1] == "{{inputs.parameters." + knob + "}}", flag
    assert _parameters(template)["stages"] == "1x60,2x60"


def test_baseline_template_keeps_its_name_and_has_no_staged_knob(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (template,) = _render(capsys)
    assert template["metadata"]["name"] == "llm-baseline"
    assert not set(STAGED_KNOBS) & set(_parameters(template))
    assert "--scenario" not in template_named(template, "load")["container"]["args"]


def test_cron_and_run_of_a_scenario_reference_its_template(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (cron,) = _render(capsys, "--kind", "cron", "--scenario", "production", "--name", "bench")
    assert cron["metadata"]["name"] == "bench-production-nightly"
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == "bench-production"
    (run,) = _render(capsys, "--kind", "workflow", "--scenario", "production")
    assert run["spec"]["workflowTemplateRef"]["name"] == "llm-baseline-production"
    assert "stages" in _parameters(run)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["render", "--scenario", "saturation", "--rate", "5"],
            "parameters: rate: not a knob of scenario saturation (its own: stages,",
        ),
        (["render", "--stages", "5x10"], "stages: not a knob of scenario baseline"),
        (["render", "--scenario", "saturation", "--stages", "5x10,"], "stage 2 '' is not"),
        (
            ["render", "--scenario", "production", "--input-min", "2000"],
            "input_min, input_mean, input_max: need min <= mean <= max, got 2000 <= 1024",
        ),
        (["render", "--scenario", "stress"], "argument --scenario: invalid choice: 'stress'"),
        (["run", "--stage-duration", "4"], "--stage-duration: scenario baseline has no stages"),
        (
            ["render", "--scenario", "saturation", "--stages", "5x20000"],
            "stages, drain_timeout: the load alone may take 21620 s (its stages, a drain",
        ),
        (["render", "--duration", "21000"], "duration: the load alone may take 22500 s"),
        (
            [
                "render",
                "--scenario",
                "sweep",
                "--sweep-num-stages",
                "30",
                "--sweep-stage-duration",
                "600",
            ],
            "sweep_num_stages, sweep_stage_duration, drain_timeout: the load alone may take "
            f"{30 * (600 + 120) + 900 + 600} s",
        ),
    ],
)
def test_scenario_knob_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv, *(["--out", str(tmp_path / "o")] if argv[0] == "run" else [])], {}) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o").exists()


def test_every_scenario_name_is_registered_with_a_description() -> None:
    descriptions = {s.name: s.description for s in SCENARIOS.values()}
    assert set(descriptions) == set(ScenarioName)
    assert all(descriptions.values())


_MY_CONFIG = """\
load:
  type: poisson
  stages: [{rate: 3, duration: 60}, {rate: 6.5, duration: 30}]
  drain_timeout: 45.5
server: {base_url: "http://my-vllm.ml:8000", model_name: my-model}
tokenizer: {pretrained_model_name_or_path: org/tok}
"""


def test_config_scenario_carries_the_users_config_and_takes_the_workflows_knobs_from_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "nightly-long.yml"
    config.write_text(_MY_CONFIG)
    (template,) = _render(capsys, "--scenario", "config", "--config", str(config))
    params = _parameters(template)
    assert template["metadata"]["name"] == "llm-baseline-config"
    assert params["config"] == _MY_CONFIG  # the text itself: a UI rerun repeats it
    assert params["config_name"] == "nightly-long"
    assert params["stages"] == "3x60,6.5x30"
    assert params["drain_timeout"] == "46"  # rounded up: the deadline never cuts the drain
    assert (params["base_url"], params["model_name"], params["tokenizer"]) == (
        "http://my-vllm.ml:8000",
        "my-model",
        "org/tok",
    )
    assert not {"num_workers", "load_type", "api_type", "rate"} & set(params)  # the config's
    load = template_named(template, "load")
    (raw,) = [a for a in load["inputs"]["artifacts"] if "raw" in a]
    assert raw["raw"]["data"] == "{{inputs.parameters.config}}"
    args = load["container"]["args"]
    assert args[args.index("--config") + 1] == "{{inputs.artifacts.config.path}}"
    assert args[args.index("--scenario") + 1] == "{{inputs.parameters.config_name}}"
    assert args[args.index("--stages") + 1] == "{{inputs.parameters.stages}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("load: {type: concurrent, stages: []}", "config: load: a closed-loop (concurrent) or"),
        ("load: {stages: [{rate: 1, duration: 2.5}]}", "load.stages[0].duration 2.5: the workflow"),
        ("load: [1", "config: not valid YAML"),
        ("- 1", "config: expected an inference-perf config"),
    ],
)
def test_config_scenario_refuses_a_config_without_rate_stages_in_one_line(
    text: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "c.yml"
    config.write_text(text)
    assert main(["render", "--scenario", "config", "--config", str(config)], {}) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)


def test_config_scenario_without_config_and_config_elsewhere_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["render", "--scenario", "config"], {}) == 2
    assert "the config scenario needs its config (--config FILE)" in capsys.readouterr().err
    config = tmp_path / "c.yml"
    config.write_text(_MY_CONFIG)
    assert main(["render", "--config", str(config)], {}) == 2
    assert "config, config_name: not a knob of scenario baseline" in capsys.readouterr().err


def test_chart_values_of_a_staged_scenario_render_its_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "benchmark:\n  scenario: production\n  scenarios:\n    production:\n"
        "      data: {input: {mean: 700, stdDev: 100, min: 300, max: 1500}}\n"
        "      load: {type: poisson, numWorkers: 3, stages: [{rate: 12, duration: 300}]}\n"
    )
    (template,) = _render(capsys, "-f", str(values), "--set", "benchmark.target.modelName=m")
    params = _parameters(template)
    assert template["metadata"]["name"] == "llm-baseline-production"
    assert (params["stages"], params["num_workers"], params["input_mean"]) == ("12x300", "3", "700")
    assert (params["model_name"], params["output_mean"]) == ("m", "512")  # the rest: packaged


def test_sweep_probe_feeds_the_loads_stages_and_its_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """tokenizer -> probe -> load; the load's `stages` input is the probe's output parameter,
    so Argo computes the load's deadline from the stages the probe wrote."""
    (template,) = _render(capsys, "--scenario", "sweep")
    assert template["metadata"]["name"] == "llm-baseline-sweep"
    params = _parameters(template)
    assert "stages" not in params
    assert (params["sweep_type"], params["sweep_num_stages"]) == ("geometric", "5")
    tasks = {t["name"]: t for t in template_named(template, "baseline")["dag"]["tasks"]}
    assert tasks["probe"]["depends"] == "tokenizer" and tasks["load"]["depends"] == "probe"
    load_args = {p["name"]: p["value"] for p in tasks["load"]["arguments"]["parameters"]}
    assert load_args["stages"] == "{{tasks.probe.outputs.parameters.stages}}"
    probe = template_named(template, "probe")
    assert probe["container"]["args"][:2] == ["probe", "--out"]
    assert [p["name"] for p in probe["outputs"]["parameters"]] == ["stages", "saturation_rate"]
    scope = {
        "inputs.parameters.stages": "1x180,9.5x180,18x180",
        "inputs.parameters.drain_timeout": "120",
    }
    load = template_named(template, "load")
    assert limit_seconds(load["activeDeadlineSeconds"], scope) == 3 * 180 + 3 * 120 + 900
    assert limit_seconds(
        probe["activeDeadlineSeconds"], {"inputs.parameters.sweep_timeout": "60"}
    ) == (60 * 72 + 900)
