"""The rendered manifests as tests read them: every object `render` emits (read back from its
YAML), the default template and runs, a template by name, a rendered time limit in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workflows.argo_expr import substitute
from workflows.baseline import main
from workflows.cron import build_cron
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.scenarios import ScenarioName, template_name
from workflows.template import build_template, build_workflow

__all__ = [
    "EXAMPLE_CONFIG",
    "RENDER_KINDS",
    "default_manifests",
    "default_template",
    "limit_seconds",
    "rendered_objects",
    "scenario_options",
    "scenario_params",
    "template_named",
]

#: A user's config for the config scenario's manifests: the packaged saturation scenario.
EXAMPLE_CONFIG = Path(__file__).resolve().parents[3] / "steps" / "scenarios" / "saturation.yml"
#: The render kinds whose union is everything the CLI can emit.
RENDER_KINDS = ("all", "workflow", "simulator")


def rendered_objects(out_dir: Path, *extra: str) -> list[dict[str, Any]]:
    """The objects of every render kind of every scenario (default knobs and options, plus
    `extra` flags)."""
    objects: list[dict[str, Any]] = []
    for scenario in ScenarioName:
        for kind in RENDER_KINDS:
            target = out_dir / scenario.value / kind
            argv = ["render", "--kind", kind, "-o", str(target), "--scenario", scenario.value]
            if scenario is ScenarioName.config:
                argv += ["--config", str(EXAMPLE_CONFIG)]
            assert main([*argv, *extra], {}) == 0
            for path in sorted(target.glob("*.yaml")):
                objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def scenario_options(scenario: ScenarioName) -> TemplateOptions:
    """Default install options, the template named as the CLI names the scenario's."""
    return TemplateOptions(name=template_name(TemplateOptions().name, scenario))


def scenario_params(scenario: ScenarioName, **knobs: Any) -> BaselineParams:
    """The scenario's knobs with `knobs` set; the config scenario's config is EXAMPLE_CONFIG."""
    if scenario is ScenarioName.config:
        knobs.setdefault("config", EXAMPLE_CONFIG.read_text())
    return BaselineParams(scenario=scenario, **knobs)


def default_template(**knobs: Any) -> dict[str, Any]:
    """The WorkflowTemplate dict with default install options and `knobs` set (`scenario`
    among them: that scenario's template; `load_pods`: the install option)."""
    load_pods = knobs.pop("load_pods", 1)
    params = scenario_params(knobs.pop("scenario", ScenarioName.baseline), **knobs)
    options = scenario_options(params.scenario).model_copy(update={"load_pods": load_pods})
    return build_template(params, options).to_dict()


def default_manifests(
    scenario: ScenarioName = ScenarioName.baseline, load_pods: int = 1
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (kind, dict) of the template, the nightly cron and a submitted Workflow."""
    params = scenario_params(scenario)
    options = scenario_options(scenario).model_copy(update={"load_pods": load_pods})
    return {
        "template": ("WorkflowTemplate", build_template(params, options).to_dict()),
        "cron": ("CronWorkflow", build_cron(params, options, "0 3 * * *").to_dict()),
        "workflow": ("Workflow", build_workflow(params, options).to_dict()),
    }


def template_named(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """The manifest's template called `name` (a step's container, or the DAG)."""
    return next(t for t in manifest["spec"]["templates"] if t["name"] == name)


def limit_seconds(text: str | int, scope: dict[str, str]) -> float:
    """A rendered limit (number, `{{=expr}}`, Go duration with s/m/h) in seconds."""
    value = substitute(str(text), scope)
    units = {"s": 1, "m": 60, "h": 3600}
    return float(value[:-1]) * units[value[-1]] if value[-1] in units else float(value)
