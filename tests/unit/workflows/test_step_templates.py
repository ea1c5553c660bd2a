"""Each step's Container template: module and image, load placement and outputs, retries,
gauges, secrets by name and the private CA; the aggregate and report knobs reach their steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.records import PARTS_DIR, RECORDS_FILE, RUN_FILE
from steps.report.__main__ import main as report_main
from steps.report.evidence import DEFAULT_TOLERANCES
from steps.report.history import DEFAULT_WINDOW
from steps.server_metrics import SERVER_METRICS_FILE
from tests.fixtures.report_runs import build_run
from tests.helpers.aggregate_records import record_row, stage_window, write_shard
from tests.helpers.argo.rendered import default_template, template_named
from tests.helpers.argo.schema import schema_errors
from workflows.argo_expr import evaluate, substitute
from workflows.options import STEPS, TemplateOptions
from workflows.params import BaselineParams
from workflows.step_templates import LOAD_PARTS_ARTIFACT, SERVER_METRICS_ARTIFACT
from workflows.template import build_template


def test_template_steps_run_their_module_in_their_image() -> None:
    manifest = build_template(
        BaselineParams(), TemplateOptions(image_registry="r.example/x", image_tag="9")
    ).to_dict()
    for step in STEPS:
        container = template_named(manifest, step)["container"]
        assert container["command"] == ["python", "-m", f"steps.{step}"]
        assert container["image"] == f"r.example/x/{step}:9"


def test_load_template_affinity_resources_and_deadline() -> None:
    manifest = default_template(target_labels="app=m,tier=gpu")
    load = template_named(manifest, "load")
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
    manifest = default_template()
    retried = {t["name"] for t in manifest["spec"]["templates"] if "retryStrategy" in t}
    assert retried == {"readiness", "tokenizer", "report"}


def test_load_outputs_are_optional_and_name_the_load_steps_files() -> None:
    """A load that wrote nothing must not also fail Argo's wait container on a required
    output; the unmerged parts of a killed load are exported for `steps.load merge`."""
    outputs = template_named(default_template(), "load")["outputs"]["artifacts"]
    assert all(a["optional"] for a in outputs)
    paths = {a["name"]: a["path"] for a in outputs}
    assert paths == {
        "records": f"/work/results/{RECORDS_FILE}",
        "run": f"/work/results/{RUN_FILE}",
        LOAD_PARTS_ARTIFACT: f"/work/results/{PARTS_DIR}",
        SERVER_METRICS_ARTIFACT: f"/work/results/{SERVER_METRICS_FILE}",
    }


@pytest.mark.parametrize(("value", "emitted"), [("12.500", True), ("0.000", True), ("", False)])
def test_gauge_skips_an_empty_value(value: str, emitted: bool) -> None:
    """Argo keeps a gauge's previous value and flags MetricsError for an empty one; the metric's
    `when` (govaluate over the substituted text) must skip it."""
    report = template_named(default_template(), "report")
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
    load = template_named(manifest, "load")["container"]
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
        container = template_named(manifest, step)["container"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if step in ("readiness", "load"):
            assert env["SSL_CERT_FILE"] == "/etc/llm-baseline/ca/bundle.pem"
            assert container["volumeMounts"] == [
                {"name": "ca-bundle", "mountPath": "/etc/llm-baseline/ca", "readOnly": True}
            ]
        else:
            assert "SSL_CERT_FILE" not in env
            assert "volumeMounts" not in container
    assert "volumes" not in default_template()["spec"]


def _step_args(manifest: dict[str, Any], step: str, run: dict[str, str]) -> list[str]:
    """`step`'s container args as Argo runs them: its task's parameters resolved from the
    workflow parameters' defaults, then the args from those; `run` holds the other variables
    (artifact paths, task results)."""
    workflow = {
        f"workflow.parameters.{p['name']}": p["value"]
        for p in manifest["spec"]["arguments"]["parameters"]
    }
    tasks = template_named(manifest, "baseline")["dag"]["tasks"]
    task = next(t for t in tasks if t["name"] == step)
    inputs = {
        f"inputs.parameters.{p['name']}": substitute(p["value"], workflow | run)
        for p in task["arguments"]["parameters"]
    }
    args = template_named(manifest, step)["container"]["args"]
    return [substitute(arg, inputs | run) for arg in args]


@pytest.mark.parametrize(
    ("knobs", "slo", "goodput"),
    [
        ({}, {"ttft_ms": None, "tpot_ms": None, "e2e_ms": None}, None),
        (
            {"slo_ttft_ms": 100, "slo_tpot_ms": 10},
            {"ttft_ms": 100.0, "tpot_ms": 10.0, "e2e_ms": None},
            pytest.approx(6 / 10),
        ),
    ],
)
def test_aggregate_slo_knobs_reach_the_step_as_its_slo_flags(
    knobs: dict[str, Any],
    slo: dict[str, float | None],
    goodput: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without an SLO goodput is null and `sla_goodput_rps` can never pass (issue 13): the
    workflow's `slo_*` parameters are aggregate's `--slo-*` flags; their default "" = no bound."""
    rows = [record_row(i, ttft_ms=50.0 if i < 6 else 150.0, gaps_ms=(10, 10)) for i in range(10)]
    write_shard(tmp_path / "load", rows, [stage_window(0, 1.0, 0, 10, 12)])
    monkeypatch.chdir(tmp_path)  # the pod's working directory: `--records load` is relative
    out = tmp_path / "summary"
    args = _step_args(
        default_template(**knobs), "aggregate", {"outputs.artifacts.summary.path": str(out)}
    )
    assert aggregate_main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["slo"] == slo
    assert summary["overall"]["goodput"] == goodput


@pytest.mark.parametrize(
    ("knobs", "window", "relative_tolerance"),
    [
        ({}, DEFAULT_WINDOW, None),
        ({"history_window": 3, "regression_tolerance": 0.2}, 3, 0.2),
    ],
)
def test_report_history_and_tolerance_knobs_reach_the_step_as_its_flags(
    knobs: dict[str, Any],
    window: int,
    relative_tolerance: float | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`history_window` and `regression_tolerance` are the report's flags of the same name; their
    default "" means the report's own defaults (10 runs, each metric's tolerance)."""
    run = build_run(tmp_path, "20261118T020000Z-000001")
    monkeypatch.chdir(run.records_dir.parent)  # `--records load`, `--out report` are relative
    manifest = default_template(bucket="", **knobs)
    variables = {
        "inputs.artifacts.summary.path": str(run.summary_dir),
        "tasks.load.exitCode": "0",
    }
    assert report_main(_step_args(manifest, "report", variables)) == 0
    regression = json.loads((run.records_dir.parent / "report" / "verdict.json").read_text())[
        "regression"
    ]
    assert regression["window"] == window
    expected = dict(DEFAULT_TOLERANCES)
    if relative_tolerance is not None:  # every relative metric; the ratio ones keep theirs
        expected = {
            name: value if name in ("error_rate", "slo_attainment") else relative_tolerance
            for name, value in expected.items()
        }
    assert regression["tolerances"] == expected
