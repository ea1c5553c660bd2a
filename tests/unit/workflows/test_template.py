"""The rendered WorkflowTemplate: Argo JSON Schema per kind, goldens, the DAG, the parameters,
the workflow-wide settings."""

from __future__ import annotations

import pytest

from steps.report.sla import DEFAULT_ERROR_RATE
from tests.helpers.argo.golden import check_golden_yaml
from tests.helpers.argo.pod import container_templates
from tests.helpers.argo.rendered import (
    default_manifests,
    default_template,
    limit_seconds,
    template_named,
)
from tests.helpers.argo.schema import schema_errors
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.scenarios import ScenarioName
from workflows.template import build_template


@pytest.mark.parametrize("scenario", list(ScenarioName))
@pytest.mark.parametrize("name", ["template", "cron", "workflow"])
def test_manifest_schema_valid_per_kind(name: str, scenario: ScenarioName) -> None:
    kind, manifest = default_manifests(scenario)[name]
    assert schema_errors(manifest, kind) == []


def test_schema_strict_misspelt_key_fails() -> None:
    manifest = default_template()
    manifest["spec"]["serviceAcountName"] = "x"
    assert any("serviceAcountName" in e for e in schema_errors(manifest, "WorkflowTemplate"))


@pytest.mark.parametrize("name", ["template", "cron", "workflow"])
def test_manifest_matches_golden(name: str) -> None:
    _, manifest = default_manifests()[name]
    check_golden_yaml(name, manifest)


@pytest.mark.parametrize("scenario", [s for s in ScenarioName if s is not ScenarioName.baseline])
def test_scenario_template_matches_golden(scenario: ScenarioName) -> None:
    """Another scenario's template: the baseline's goldens hold its cron and run, which differ
    only by the template's name and parameters."""
    _, manifest = default_manifests(scenario)["template"]
    check_golden_yaml(f"template_{scenario.value}", manifest)


def test_error_rate_limit_defaults_to_the_reports_own() -> None:
    """A nightly run with failed requests must not be green with the defaults (issue 11 item 5):
    the parameter carries the report's default limit (params cannot import the report step)."""
    declared = {p["name"]: p for p in default_template()["spec"]["arguments"]["parameters"]}
    assert declared["sla_error_rate"]["value"] == str(DEFAULT_ERROR_RATE) == "0.01"


def test_template_every_knob_is_a_described_parameter() -> None:
    declared = default_template()["spec"]["arguments"]["parameters"]
    assert [p["name"] for p in declared] == list(BaselineParams().knobs)
    assert all(p.get("description") for p in declared)
    enums = {p["name"]: p.get("enum") for p in declared}
    assert enums["api_type"] == ["completion", "chat"]
    assert enums["fail_on_breach"] == ["true", "false"]


def test_aggregate_runs_after_failed_load_without_exit_code_gate() -> None:
    """Aggregate runs after load Succeeded or Failed (exit 1: records complete), and takes
    the records as OPTIONAL: a load that wrote nothing leaves aggregate to fail in one line.
    No `when` on `{{tasks.load.exitCode}}`: a load that never ran has no exit code, and Argo
    requeues a task whose `when` names a missing variable until the workflow deadline."""
    manifest = default_template()
    tasks = {t["name"]: t for t in template_named(manifest, "baseline")["dag"]["tasks"]}
    aggregate = tasks["aggregate"]
    assert aggregate["depends"] == "load.Succeeded || load.Failed"
    assert "exitCode" not in str(aggregate)
    assert all(a["optional"] for a in aggregate["arguments"]["artifacts"])
    inputs = template_named(manifest, "aggregate")["inputs"]["artifacts"]
    assert all(a["optional"] for a in inputs)


def test_report_gets_the_load_exit_code_only_after_load_ran() -> None:
    manifest = default_template()
    tasks = {t["name"]: t for t in template_named(manifest, "baseline")["dag"]["tasks"]}
    given = {p["name"]: p["value"] for p in tasks["report"]["arguments"]["parameters"]}
    assert given["load_exit_code"] == "{{tasks.load.exitCode}}"
    args = template_named(manifest, "report")["container"]["args"]
    assert args[args.index("--load-exit-code") + 1] == "{{inputs.parameters.load_exit_code}}"
    # Report runs only on aggregate's success, i.e. on records the load's main container
    # wrote before it exited, so Argo has its exit code. No other task names one.
    assert tasks["report"]["depends"] == "aggregate"
    assert [n for n, t in tasks.items() if "exitCode" in str(t)] == ["report"]


def test_template_cluster_settings_present() -> None:
    spec = default_template()["spec"]
    assert spec["synchronization"] == {
        "mutexes": [{"name": "llm-baseline-{{workflow.parameters.base_url}}"}]
    }
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["ttlStrategy"]["secondsAfterCompletion"] > 0
    assert isinstance(spec["activeDeadlineSeconds"], int)
    report = template_named({"spec": spec}, "report")
    gauges = {m["name"] for m in report["metrics"]["prometheus"]}
    assert gauges == {
        "llm_baseline_ttft_p50_ms",
        "llm_baseline_ttft_p99_ms",
        "llm_baseline_itl_p50_ms",
        "llm_baseline_itl_p99_ms",
        "llm_baseline_error_rate",
    }


def test_artifact_repository_ref_configurable() -> None:
    options = TemplateOptions(
        artifact_repository_configmap="artifact-repositories", artifact_repository_key="s3"
    )
    spec = build_template(BaselineParams(), options).to_dict()["spec"]
    assert spec["artifactRepositoryRef"] == {"configMap": "artifact-repositories", "key": "s3"}
    assert "artifactRepositoryRef" not in default_template()["spec"]


def test_workflow_deadline_covers_the_worst_case_at_defaults() -> None:
    """Every step using its whole budget one after another still ends before the workflow's
    activeDeadlineSeconds, so no step is cut short by it at the default parameters."""
    manifest = default_template()
    values = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    scope = {f"inputs.parameters.{k}": v for k, v in values.items()}
    worst = sum(limit_seconds(t["timeout"], scope) for t in container_templates(manifest))
    assert worst <= manifest["spec"]["activeDeadlineSeconds"]
