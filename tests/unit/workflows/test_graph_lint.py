"""The graph lint: clean on the rendered manifests, and each check firing on a broken one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers.argo.rendered import default_manifests, default_template, template_named
from workflows.graph_lint import lint_run, lint_template
from workflows.scenarios import ScenarioName


@pytest.mark.parametrize("load_pods", [1, 3])
@pytest.mark.parametrize("scenario", list(ScenarioName))
def test_graph_lint_rendered_manifests_clean(scenario: ScenarioName, load_pods: int) -> None:
    manifests = default_manifests(scenario, load_pods)
    template = manifests["template"][1]
    assert lint_template(template) == []
    assert lint_run(manifests["workflow"][1]["spec"], template) == []
    assert lint_run(manifests["cron"][1]["spec"]["workflowSpec"], template) == []


def _break_depends(m: dict[str, Any]) -> None:
    template_named(m, "baseline")["dag"]["tasks"][1]["depends"] = "readyness"


def _break_param(m: dict[str, Any]) -> None:
    m["spec"]["arguments"]["parameters"] = m["spec"]["arguments"]["parameters"][1:]


def _break_from(m: dict[str, Any]) -> None:
    task = template_named(m, "baseline")["dag"]["tasks"][3]
    task["arguments"]["artifacts"][0]["from"] = "{{tasks.load.outputs.artifacts.rows}}"


def _break_mount(m: dict[str, Any]) -> None:
    template_named(m, "load")["container"]["volumeMounts"] = [{"name": "cache", "mountPath": "/c"}]


def _break_affinity(m: dict[str, Any]) -> None:
    term = template_named(m, "load")["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    del term["namespaces"]


def _break_entrypoint(m: dict[str, Any]) -> None:
    m["spec"]["entrypoint"] = "main"


def _break_task_template(m: dict[str, Any]) -> None:
    template_named(m, "baseline")["dag"]["tasks"][0]["template"] = "probe"


def _break_retry(m: dict[str, Any]) -> None:
    template_named(m, "load")["retryStrategy"] = {"limit": "1"}


def _break_input(m: dict[str, Any]) -> None:
    template_named(m, "report")["container"]["args"].append("{{inputs.parameters.nope}}")


def _drop_timeout(m: dict[str, Any]) -> None:
    del template_named(m, "load")["timeout"]


def _bare_timeout(m: dict[str, Any]) -> None:
    template_named(m, "aggregate")["timeout"] = "2400"


def _dag_timeout(m: dict[str, Any]) -> None:
    template_named(m, "baseline")["timeout"] = "1h"


def _gate_on_exit_code(m: dict[str, Any]) -> None:
    """The `when` gate on aggregate that would hang a run whose load never started."""
    template_named(m, "baseline")["dag"]["tasks"][3]["when"] = "{{tasks.load.exitCode}} < 2"


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_break_depends, "depends names unknown task 'readyness'"),
        (_break_param, "workflow.parameters.base_url is used but not declared"),
        (_break_from, "declares no output artifact 'rows'"),
        (_break_mount, "volumeMount 'cache' has no volume"),
        (_break_affinity, "needs required podAffinity"),
        (_break_entrypoint, "entrypoint 'main' is not a template"),
        (_break_task_template, "template 'probe' does not exist"),
        (_break_retry, "must not be retried"),
        (_break_input, "inputs.parameters.nope"),
        (_drop_timeout, "template 'load': has no timeout"),
        (_bare_timeout, "timeout '2400' needs a unit"),
        (_dag_timeout, "refuses timeout on a dag"),
        (_gate_on_exit_code, "task 'aggregate': uses tasks.load.exitCode but may run when"),
    ],
)
def test_graph_lint_broken_manifest_reports_problem(breaker: Any, expected: str) -> None:
    manifest = copy.deepcopy(default_template())
    breaker(manifest)
    assert any(expected in p for p in lint_template(manifest)), lint_template(manifest)


def test_lint_run_missing_parameter_reported() -> None:
    manifests = default_manifests()
    run = copy.deepcopy(manifests["workflow"][1]["spec"])
    run["arguments"]["parameters"].pop()
    assert lint_run(run, manifests["template"][1]) == [
        "parameter 'fail_on_breach' is not set explicitly"
    ]
