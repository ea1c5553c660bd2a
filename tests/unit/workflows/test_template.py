"""The rendered manifests: Argo JSON Schema per kind, graph lint, goldens, knob wiring."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from steps.load.config import load_config
from steps.records import PARTS_DIR, RECORDS_FILE, RUN_FILE
from steps.report.sla import DEFAULT_ERROR_RATE
from tests.helpers.argo.golden import check_golden_yaml
from tests.helpers.argo.pod import container_templates
from tests.helpers.argo.schema import schema_errors
from workflows.argo_expr import evaluate, substitute
from workflows.cron import build_cron
from workflows.graph_lint import lint_run, lint_template
from workflows.options import STEPS, TemplateOptions
from workflows.params import BaselineParams
from workflows.step_templates import LOAD_PARTS_ARTIFACT
from workflows.template import build_template, build_workflow
from workflows.time_budget import PENDING_ALLOWANCE_S


def _template(**knobs: Any) -> dict[str, Any]:
    return build_template(BaselineParams(**knobs), TemplateOptions()).to_dict()


def _manifests() -> dict[str, tuple[str, dict[str, Any]]]:
    params, options = BaselineParams(), TemplateOptions()
    return {
        "template": ("WorkflowTemplate", build_template(params, options).to_dict()),
        "cron": ("CronWorkflow", build_cron(params, options, "0 3 * * *").to_dict()),
        "workflow": ("Workflow", build_workflow(params, options).to_dict()),
    }


def _task_template(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in manifest["spec"]["templates"] if t["name"] == name)


@pytest.mark.parametrize("name", ["template", "cron", "workflow"])
def test_manifest_schema_valid_per_kind(name: str) -> None:
    kind, manifest = _manifests()[name]
    assert schema_errors(manifest, kind) == []


def test_schema_strict_misspelt_key_fails() -> None:
    manifest = _template()
    manifest["spec"]["serviceAcountName"] = "x"
    assert any("serviceAcountName" in e for e in schema_errors(manifest, "WorkflowTemplate"))


@pytest.mark.parametrize("name", ["template", "cron", "workflow"])
def test_manifest_matches_golden(name: str) -> None:
    _, manifest = _manifests()[name]
    check_golden_yaml(name, manifest)


def test_graph_lint_rendered_manifests_clean() -> None:
    manifests = _manifests()
    template = manifests["template"][1]
    assert lint_template(template) == []
    assert lint_run(manifests["workflow"][1]["spec"], template) == []
    assert lint_run(manifests["cron"][1]["spec"]["workflowSpec"], template) == []


def _break_depends(m: dict[str, Any]) -> None:
    _task_template(m, "baseline")["dag"]["tasks"][1]["depends"] = "readyness"


def _break_param(m: dict[str, Any]) -> None:
    m["spec"]["arguments"]["parameters"] = m["spec"]["arguments"]["parameters"][1:]


def _break_from(m: dict[str, Any]) -> None:
    task = _task_template(m, "baseline")["dag"]["tasks"][3]
    task["arguments"]["artifacts"][0]["from"] = "{{tasks.load.outputs.artifacts.rows}}"


def _break_mount(m: dict[str, Any]) -> None:
    _task_template(m, "load")["container"]["volumeMounts"] = [{"name": "cache", "mountPath": "/c"}]


def _break_affinity(m: dict[str, Any]) -> None:
    term = _task_template(m, "load")["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    del term["namespaces"]


def _break_entrypoint(m: dict[str, Any]) -> None:
    m["spec"]["entrypoint"] = "main"


def _break_task_template(m: dict[str, Any]) -> None:
    _task_template(m, "baseline")["dag"]["tasks"][0]["template"] = "probe"


def _break_retry(m: dict[str, Any]) -> None:
    _task_template(m, "load")["retryStrategy"] = {"limit": "1"}


def _break_input(m: dict[str, Any]) -> None:
    _task_template(m, "report")["container"]["args"].append("{{inputs.parameters.nope}}")


def _drop_timeout(m: dict[str, Any]) -> None:
    del _task_template(m, "load")["timeout"]


def _bare_timeout(m: dict[str, Any]) -> None:
    _task_template(m, "aggregate")["timeout"] = "2400"


def _dag_timeout(m: dict[str, Any]) -> None:
    _task_template(m, "baseline")["timeout"] = "1h"


def _gate_on_exit_code(m: dict[str, Any]) -> None:
    """The `when` gate on aggregate that would hang a run whose load never started."""
    _task_template(m, "baseline")["dag"]["tasks"][3]["when"] = "{{tasks.load.exitCode}} < 2"


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
    manifest = copy.deepcopy(_template())
    breaker(manifest)
    assert any(expected in p for p in lint_template(manifest)), lint_template(manifest)


def test_lint_run_missing_parameter_reported() -> None:
    manifests = _manifests()
    run = copy.deepcopy(manifests["workflow"][1]["spec"])
    run["arguments"]["parameters"].pop()
    assert lint_run(run, manifests["template"][1]) == [
        "parameter 'fail_on_breach' is not set explicitly"
    ]


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


def test_error_rate_limit_defaults_to_the_reports_own() -> None:
    """A nightly run with failed requests must not be green with the defaults (issue 11 item 5):
    the parameter carries the report's default limit (params cannot import the report step)."""
    declared = {p["name"]: p for p in _template()["spec"]["arguments"]["parameters"]}
    assert declared["sla_error_rate"]["value"] == str(DEFAULT_ERROR_RATE) == "0.01"


def test_template_every_knob_is_a_described_parameter() -> None:
    declared = _template()["spec"]["arguments"]["parameters"]
    assert [p["name"] for p in declared] == list(BaselineParams.model_fields)
    assert all(p.get("description") for p in declared)
    enums = {p["name"]: p.get("enum") for p in declared}
    assert enums["api_type"] == ["completion", "chat"]
    assert enums["fail_on_breach"] == ["true", "false"]


def test_template_steps_run_their_module_in_their_image() -> None:
    manifest = build_template(
        BaselineParams(), TemplateOptions(image_registry="r.example/x", image_tag="9")
    ).to_dict()
    for step in STEPS:
        container = _task_template(manifest, step)["container"]
        assert container["command"] == ["python", "-m", f"steps.{step}"]
        assert container["image"] == f"r.example/x/{step}:9"


def test_load_template_affinity_resources_and_deadline() -> None:
    manifest = _template(target_labels="app=m,tier=gpu")
    load = _task_template(manifest, "load")
    term = load["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term == {
        "topologyKey": "topology.kubernetes.io/zone",
        "namespaces": ["{{inputs.parameters.target_namespace}}"],
        "labelSelector": {"matchLabels": {"app": "m", "tier": "gpu"}},
    }
    assert load["container"]["resources"] == {
        "limits": {"cpu": "4", "memory": "8Gi"},
        "requests": {"cpu": "2", "memory": "4Gi"},
    }
    assert "retryStrategy" not in load
    assert load["activeDeadlineSeconds"] == "{{=asInt(inputs.parameters.duration) + 900}}"
    targets = {p["name"]: p for p in manifest["spec"]["arguments"]["parameters"]}
    assert targets["target_labels"]["enum"] == ["app=m,tier=gpu"]


def test_template_retries_only_readiness_tokenizer_report() -> None:
    manifest = _template()
    retried = {t["name"] for t in manifest["spec"]["templates"] if "retryStrategy" in t}
    assert retried == {"readiness", "tokenizer", "report"}


def test_aggregate_runs_after_failed_load_without_exit_code_gate() -> None:
    """Aggregate runs after load Succeeded or Failed (exit 1: records complete), and takes
    the records as OPTIONAL: a load that wrote nothing leaves aggregate to fail in one line.
    No `when` on `{{tasks.load.exitCode}}`: a load that never ran has no exit code, and Argo
    requeues a task whose `when` names a missing variable until the workflow deadline."""
    manifest = _template()
    tasks = {t["name"]: t for t in _task_template(manifest, "baseline")["dag"]["tasks"]}
    aggregate = tasks["aggregate"]
    assert aggregate["depends"] == "load.Succeeded || load.Failed"
    assert "exitCode" not in str(aggregate)
    assert all(a["optional"] for a in aggregate["arguments"]["artifacts"])
    inputs = _task_template(manifest, "aggregate")["inputs"]["artifacts"]
    assert all(a["optional"] for a in inputs)


def test_load_outputs_are_optional_and_name_the_load_steps_files() -> None:
    """A load that wrote nothing must not also fail Argo's wait container on a required
    output; the unmerged parts of a killed load are exported for `steps.load merge`."""
    outputs = _task_template(_template(), "load")["outputs"]["artifacts"]
    assert all(a["optional"] for a in outputs)
    paths = {a["name"]: a["path"] for a in outputs}
    assert paths == {
        "records": f"/work/results/{RECORDS_FILE}",
        "run": f"/work/results/{RUN_FILE}",
        LOAD_PARTS_ARTIFACT: f"/work/results/{PARTS_DIR}",
    }


def test_report_gets_the_load_exit_code_only_after_load_ran() -> None:
    manifest = _template()
    tasks = {t["name"]: t for t in _task_template(manifest, "baseline")["dag"]["tasks"]}
    given = {p["name"]: p["value"] for p in tasks["report"]["arguments"]["parameters"]}
    assert given["load_exit_code"] == "{{tasks.load.exitCode}}"
    args = _task_template(manifest, "report")["container"]["args"]
    assert args[args.index("--load-exit-code") + 1] == "{{inputs.parameters.load_exit_code}}"
    # Report runs only on aggregate's success, i.e. on records the load's main container
    # wrote before it exited, so Argo has its exit code. No other task names one.
    assert tasks["report"]["depends"] == "aggregate"
    assert [n for n, t in tasks.items() if "exitCode" in str(t)] == ["report"]


def test_template_cluster_settings_present() -> None:
    spec = _template()["spec"]
    assert spec["synchronization"] == {
        "mutexes": [{"name": "llm-baseline-{{workflow.parameters.base_url}}"}]
    }
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["ttlStrategy"]["secondsAfterCompletion"] > 0
    assert isinstance(spec["activeDeadlineSeconds"], int)
    report = _task_template({"spec": spec}, "report")
    gauges = {m["name"] for m in report["metrics"]["prometheus"]}
    assert gauges == {
        "llm_baseline_ttft_p50_ms",
        "llm_baseline_ttft_p99_ms",
        "llm_baseline_itl_p50_ms",
        "llm_baseline_itl_p99_ms",
        "llm_baseline_error_rate",
    }


@pytest.mark.parametrize(("value", "emitted"), [("12.500", True), ("0.000", True), ("", False)])
def test_gauge_skips_an_empty_value(value: str, emitted: bool) -> None:
    """Argo keeps a gauge's previous value and flags MetricsError for an empty one; the metric's
    `when` (govaluate over the substituted text) must skip it."""
    report = _task_template(_template(), "report")
    outputs = {p["name"]: p for p in report["outputs"]["parameters"]}
    for metric in report["metrics"]["prometheus"]:
        name = metric["gauge"]["value"].removeprefix("{{outputs.parameters.").removesuffix("}}")
        # A report that failed before writing the file still yields "" for the `when`.
        assert outputs[name]["valueFrom"]["default"] == ""
        when = substitute(metric["when"], {f"outputs.parameters.{name}": value})
        assert evaluate(when, {}) is emitted


def test_template_secrets_by_name_only() -> None:
    options = TemplateOptions(api_key_secret="vllm-key")
    manifest = build_template(BaselineParams(), options).to_dict()
    load = _task_template(manifest, "load")["container"]
    assert load["env"] == [
        {
            "name": "BENCH_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "vllm-key", "key": "api-key", "optional": True}},
        }
    ]
    assert load["args"][-2:] == ["--api-key-env", "BENCH_API_KEY"]


def test_private_ca_bundle_mounted_for_the_endpoint_steps_only() -> None:
    options = TemplateOptions(ca_bundle_configmap="corp-ca", ca_bundle_key="bundle.pem")
    manifest = build_template(BaselineParams(), options).to_dict()
    assert schema_errors(manifest, "WorkflowTemplate") == []
    assert manifest["spec"]["volumes"] == [{"name": "ca-bundle", "configMap": {"name": "corp-ca"}}]
    for step in STEPS:
        container = _task_template(manifest, step)["container"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if step in ("readiness", "load"):
            assert env["SSL_CERT_FILE"] == "/etc/llm-baseline/ca/bundle.pem"
            assert container["volumeMounts"] == [
                {"name": "ca-bundle", "mountPath": "/etc/llm-baseline/ca", "readOnly": True}
            ]
        else:
            assert "SSL_CERT_FILE" not in env
            assert "volumeMounts" not in container
    assert "volumes" not in _template()["spec"]


def test_artifact_repository_ref_configurable() -> None:
    options = TemplateOptions(
        artifact_repository_configmap="artifact-repositories", artifact_repository_key="s3"
    )
    spec = build_template(BaselineParams(), options).to_dict()["spec"]
    assert spec["artifactRepositoryRef"] == {"configMap": "artifact-repositories", "key": "s3"}
    assert "artifactRepositoryRef" not in _template()["spec"]


def test_cron_labels_reach_the_workflows_it_starts() -> None:
    spec = build_cron(BaselineParams(), TemplateOptions(), "0 3 * * *").to_dict()["spec"]
    assert spec["workflowMetadata"]["labels"] == {"trigger": "cron"}
    assert build_workflow(BaselineParams(), TemplateOptions()).to_dict()["metadata"]["labels"] == {
        "trigger": "cli"
    }


def test_cron_passes_every_parameter_and_fails_on_breach() -> None:
    cron = build_cron(BaselineParams(), TemplateOptions(), "0 3 * * *", "Europe/Paris").to_dict()
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["timezone"] == "Europe/Paris"
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": "llm-baseline"}
    values = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert values["fail_on_breach"] == "true"
    assert set(values) == set(BaselineParams.model_fields)


# ---------------------------------------------------------------------------------------------
# Time limits: each measured as Argo v4.0.5 does (see workflows/time_budget.py)


def _seconds(text: str | int, scope: dict[str, str]) -> float:
    """A rendered limit (number, `{{=expr}}`, Go duration with s/m/h) in seconds."""
    value = substitute(str(text), scope)
    units = {"s": 1, "m": 60, "h": 3600}
    return float(value[:-1]) * units[value[-1]] if value[-1] in units else float(value)


_PARAMS = [
    {"readiness_timeout": "600", "duration": "300"},
    {"readiness_timeout": "30", "duration": "3600"},
    {"readiness_timeout": "7200", "duration": "20"},
]


@pytest.mark.parametrize(
    "values", _PARAMS, ids=lambda v: f"{v['readiness_timeout']}/{v['duration']}"
)
def test_retry_budget_lets_every_retry_happen(values: dict[str, str]) -> None:
    """maxDuration counts from the first attempt's start: it must hold limit + 1 attempts (each
    up to its Pending allowance and its activeDeadlineSeconds) and the backoffs between them,
    or the retries the strategy promises never happen (5m under a 600 s readiness wait)."""
    scope = {f"inputs.parameters.{k}": v for k, v in values.items()}
    retried = [t for t in _template()["spec"]["templates"] if "retryStrategy" in t]
    assert {t["name"] for t in retried} == {"readiness", "tokenizer", "report"}
    for template in retried:
        retry = template["retryStrategy"]
        limit = int(retry["limit"])
        backoff = retry["backoff"]
        waits = sum(
            _seconds(backoff["duration"], scope) * int(backoff["factor"]) ** n for n in range(limit)
        )
        attempt = _seconds(template["activeDeadlineSeconds"], scope) + PENDING_ALLOWANCE_S
        assert limit >= 1
        assert _seconds(backoff["maxDuration"], scope) >= (limit + 1) * attempt + waits, template[
            "name"
        ]


@pytest.mark.parametrize(
    "values", _PARAMS, ids=lambda v: f"{v['readiness_timeout']}/{v['duration']}"
)
def test_timeout_bounds_pending_on_every_step(values: dict[str, str]) -> None:
    """Only the template `timeout` covers a Pending pod (an unschedulable load holding the
    endpoint's mutex). It counts from the node's start, so it must exceed the step's
    activeDeadlineSeconds by the Pending allowance, cover all attempts of a retried step (its
    node is the retry node), and stay bounded."""
    scope = {f"inputs.parameters.{k}": v for k, v in values.items()}
    for template in _template()["spec"]["templates"]:
        if "container" not in template:
            assert "timeout" not in template  # Argo refuses timeout on a dag template
            continue
        name = template["name"]
        timeout = substitute(template["timeout"], scope)
        assert timeout[-1] == "s" and timeout[:-1].isdigit(), name  # Argo: not a bare number
        deadline = _seconds(template["activeDeadlineSeconds"], scope)
        retry = template.get("retryStrategy")
        budget = _seconds(retry["backoff"]["maxDuration"], scope) if retry else None
        expected = budget if budget is not None else deadline + PENDING_ALLOWANCE_S
        assert _seconds(timeout, scope) == expected, name
    assert 0 < PENDING_ALLOWANCE_S <= 1800


def test_workflow_deadline_covers_the_worst_case_at_defaults() -> None:
    """Every step using its whole budget one after another still ends before the workflow's
    activeDeadlineSeconds, so no step is cut short by it at the default parameters."""
    manifest = _template()
    values = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    scope = {f"inputs.parameters.{k}": v for k, v in values.items()}
    worst = sum(_seconds(t["timeout"], scope) for t in container_templates(manifest))
    assert worst <= manifest["spec"]["activeDeadlineSeconds"]
