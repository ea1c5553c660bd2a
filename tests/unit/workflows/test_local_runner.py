"""The local runner on small manifests (real subprocesses) and its refusals by name."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from steps.errors import UsageError
from workflows.local_runner import RunnerEnv, run_template
from workflows.local_subset import UnsupportedFeature, check_supported, cluster_only_fields
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template


def _env(tmp_path: Path, lines: list[str]) -> RunnerEnv:
    return RunnerEnv(sys.executable, {"PATH": "/usr/bin:/bin"}, lines.append, tmp_path / "locks")


def _container(name: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "container": {"image": "x", "command": ["python", "-c", code], "workingDir": "/work"},
        **extra,
    }


def _manifest(templates: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "n", "value": "3"}]},
            "synchronization": {"mutexes": [{"name": "m-{{workflow.parameters.n}}"}]},
            "templates": [*templates, {"name": "main", "dag": {"tasks": tasks}}],
        },
    }


PRODUCE = (
    "import sys, pathlib; n = int(sys.argv[1]); "
    "pathlib.Path('out').mkdir(exist_ok=True); pathlib.Path('out/n').write_text(str(n * 2)); "
    "pathlib.Path('data.txt').write_text('x' * n); sys.exit(int(sys.argv[2]))"
)
CONSUME = "import sys, pathlib; print('got', len(pathlib.Path(sys.argv[1]).read_text()))"


def _pipeline(exit_code: str, depends: str) -> dict[str, Any]:
    produce = _container(
        "produce",
        PRODUCE,
        inputs={"parameters": [{"name": "n"}]},
        outputs={
            "parameters": [{"name": "double", "valueFrom": {"path": "/work/out/n"}}],
            "artifacts": [{"name": "data", "path": "/work/data.txt", "archive": {"none": {}}}],
        },
    )
    produce["container"]["args"] = ["{{inputs.parameters.n}}", exit_code]
    consume = _container(
        "consume", CONSUME, inputs={"artifacts": [{"name": "d", "path": "/work/in/d.txt"}]}
    )
    consume["container"]["args"] = ["{{inputs.artifacts.d.path}}"]
    tasks = [
        {
            "name": "produce",
            "template": "produce",
            "arguments": {"parameters": [{"name": "n", "value": "{{workflow.parameters.n}}"}]},
        },
        {
            "name": "consume",
            "template": "consume",
            "depends": depends,
            "arguments": {
                "artifacts": [{"name": "d", "from": "{{tasks.produce.outputs.artifacts.data}}"}]
            },
        },
    ]
    return _manifest([produce, consume], tasks)


def test_run_template_passes_parameters_outputs_and_artifacts(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_template(
        _pipeline("0", "produce"), {"n": "5"}, tmp_path / "run", _env(tmp_path, lines)
    )
    assert result.phase == "Succeeded"
    assert result.tasks["produce"].outputs == {"double": "10"}
    assert "[consume] got 5" in lines
    assert (tmp_path / "run" / "artifacts" / "produce" / "data" / "data.txt").read_text() == "xxxxx"


def test_run_template_failed_task_handled_by_depends_succeeds(tmp_path: Path) -> None:
    manifest = _pipeline("1", "produce.Succeeded || produce.Failed")
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, []))
    assert result.tasks["produce"].phase == "Failed"
    assert result.tasks["consume"].phase == "Succeeded"
    assert result.phase == "Succeeded"


def test_run_template_failed_dependency_omits_task_and_fails(tmp_path: Path) -> None:
    result = run_template(_pipeline("1", "produce"), {}, tmp_path / "run", _env(tmp_path, []))
    assert result.tasks["consume"].phase == "Omitted"
    assert result.phase == "Failed"


def test_run_template_retry_expression_stops_on_usage_exit(tmp_path: Path) -> None:
    manifest = _pipeline("2", "produce")
    manifest["spec"]["templates"][0]["retryStrategy"] = {
        "limit": "2",
        "retryPolicy": "Always",
        "expression": "asInt(lastRetry.exitCode) != 2",
        "backoff": {"duration": "0s", "factor": "2"},
    }
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, []))
    assert (result.tasks["produce"].attempts, result.tasks["produce"].exit_code) == (1, 2)
    manifest["spec"]["templates"][0]["retryStrategy"]["expression"] = (
        "asInt(lastRetry.exitCode) == 2"
    )
    result = run_template(manifest, {}, tmp_path / "run2", _env(tmp_path, []))
    assert result.tasks["produce"].attempts == 3


def test_run_template_deadline_kills_step(tmp_path: Path) -> None:
    manifest = _manifest(
        [_container("sleep", "import time; time.sleep(30)", activeDeadlineSeconds="{{=1 + 0}}")],
        [{"name": "sleep", "template": "sleep"}],
    )
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, []))
    assert result.tasks["sleep"].phase == "Failed"
    assert "activeDeadlineSeconds" in result.tasks["sleep"].message


def test_run_template_unknown_parameter_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown workflow parameter 'rate'"):
        run_template(_pipeline("0", "produce"), {"rate": "1"}, tmp_path, _env(tmp_path, []))


@pytest.mark.parametrize(
    ("mutate", "name"),
    [
        (lambda m: m["spec"].update(onExit="cleanup"), "'onExit'"),
        (lambda m: m["spec"]["templates"][0].update(script={"source": "x"}), "'script'"),
        (lambda m: m["spec"]["templates"][0].update(sidecars=[]), "'sidecars'"),
        (
            lambda m: m["spec"]["templates"][-1]["dag"]["tasks"][0].update(withItems=[1]),
            "'withItems'",
        ),
        (
            lambda m: m["spec"]["templates"][-1]["dag"]["tasks"][0].update(continueOn={}),
            "'continueOn'",
        ),
        (
            lambda m: m["spec"]["templates"][0]["outputs"]["artifacts"][0].update(
                archive={"tar": {}}
            ),
            "'tar'",
        ),
        (
            lambda m: m["spec"]["templates"][0]["container"].update(command=["sh", "-c", "x"]),
            "must start with 'python'",
        ),
        (
            lambda m: m["spec"]["templates"][0].update(
                retryStrategy={"retryPolicy": "OnTransientError"}
            ),
            "'OnTransientError'",
        ),
        (
            # Here every failure is a step's exit: OnError would retry none of them.
            lambda m: m["spec"]["templates"][0].update(retryStrategy={"retryPolicy": "OnError"}),
            "retryStrategy.retryPolicy 'OnError' is not supported",
        ),
    ],
)
def test_check_supported_refuses_feature_by_name(mutate: Any, name: str) -> None:
    manifest = copy.deepcopy(_pipeline("0", "produce"))
    mutate(manifest)
    with pytest.raises(UnsupportedFeature, match=name):
        check_supported(manifest)


def test_check_supported_accepts_project_template() -> None:
    check_supported(build_template(BaselineParams(), TemplateOptions()).to_dict())


# ---------------------------------------------------------------------------------------------
# Argo behaviours the manifests rely on (v4.0.5: dag.go, operator.go)


@pytest.mark.parametrize(
    ("exit_code", "consumed", "phase"), [("1", True, "Succeeded"), ("2", False, "Failed")]
)
def test_when_gates_a_task_and_a_skipped_task_keeps_its_parents_failure(
    exit_code: str, consumed: bool, phase: str, tmp_path: Path
) -> None:
    """`when` sees `{{tasks.X.exitCode}}`; a task it skips is not "completed", so it inherits
    the failed parent's phase and the run fails (dag.go assessDAGPhase)."""
    manifest = _pipeline(exit_code, "produce.Succeeded || produce.Failed")
    manifest["spec"]["templates"][-1]["dag"]["tasks"][1]["when"] = "{{tasks.produce.exitCode}} < 2"
    lines: list[str] = []
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    assert result.tasks["consume"].phase == ("Succeeded" if consumed else "Skipped")
    assert result.phase == phase


def _reporter(depends: str, value: str) -> dict[str, Any]:
    """The pipeline plus a task that prints `value` after `depends`."""
    manifest = _pipeline("1", "produce")
    report = _container(
        "report", "import sys; print('seen', sys.argv[1])", inputs={"parameters": [{"name": "v"}]}
    )
    report["container"]["args"] = ["{{inputs.parameters.v}}"]
    manifest["spec"]["templates"].insert(0, report)
    manifest["spec"]["templates"][-1]["dag"]["tasks"].append(
        {
            "name": "report",
            "template": "report",
            "depends": depends,
            "arguments": {"parameters": [{"name": "v", "value": value}]},
        }
    )
    return manifest


def test_task_exit_code_and_status_are_substituted(tmp_path: Path) -> None:
    manifest = _reporter("produce.Failed", "{{tasks.produce.exitCode}}/{{tasks.produce.status}}")
    lines: list[str] = []
    run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    assert "[report] seen 1/Failed" in lines


def test_missing_exit_code_is_refused_as_the_hang_it_is_on_argo(tmp_path: Path) -> None:
    """consume was omitted (never ran): Argo has no exitCode for it and requeues forever."""
    manifest = _reporter("consume.Omitted", "{{tasks.consume.exitCode}}")
    with pytest.raises(UsageError, match=r"tasks\.consume\.exitCode.*requeue this task"):
        run_template(manifest, {}, tmp_path / "run", _env(tmp_path, []))


def test_max_duration_stops_retries_whose_backoff_would_end_past_it(tmp_path: Path) -> None:
    manifest = _pipeline("1", "produce")
    strategy = {
        "limit": "5",
        "retryPolicy": "Always",
        "backoff": {"duration": "1s", "factor": "2", "maxDuration": "{{=1 + 1}}s"},
    }
    manifest["spec"]["templates"][0]["retryStrategy"] = strategy
    lines: list[str] = []
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    # Attempt 1 at ~0 s, its 1 s backoff fits in 2 s; attempt 2's 2 s backoff would not.
    assert result.tasks["produce"].attempts == 2
    assert "backoff would exceed maxDuration (2 s)" in result.tasks["produce"].message


def test_output_parameter_default_and_metric_when(tmp_path: Path) -> None:
    """A missing output file takes the parameter's default; a gauge whose `when` is false
    is not emitted (the template's guard against empty values)."""
    manifest = _pipeline("0", "produce")
    produce = manifest["spec"]["templates"][0]
    produce["outputs"]["parameters"] += [
        {"name": "missing", "valueFrom": {"path": "/work/out/none", "default": ""}}
    ]
    produce["metrics"] = {
        "prometheus": [
            {
                "name": f"m_{name}",
                "help": "h",
                "when": f"'{{{{outputs.parameters.{name}}}}}' != ''",
                "gauge": {"value": f"{{{{outputs.parameters.{name}}}}}", "realtime": False},
            }
            for name in ("double", "missing")
        ]
    }
    result = run_template(manifest, {"n": "4"}, tmp_path / "run", _env(tmp_path, []))
    assert result.tasks["produce"].outputs == {"double": "8", "missing": ""}
    assert result.metrics == {"m_double": 8.0}


def test_run_says_first_what_it_does_not_emulate(tmp_path: Path) -> None:
    manifest = _pipeline("0", "produce")
    manifest["spec"]["templates"][0]["timeout"] = "{{=60 + 0}}s"
    manifest["spec"]["podSpecPatch"] = "{}"
    lines: list[str] = []
    run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    assert lines[0].startswith("local runner: not emulated on this machine")
    assert "timeout (no Pending phase here)" in lines[0] and "podSpecPatch" in lines[0]
    project = cluster_only_fields(build_template(BaselineParams(), TemplateOptions()).to_dict())
    for field in ("affinity", "image", "podSpecPatch", "resources", "serviceAccountName"):
        assert field in project
    assert any(f.startswith("timeout") for f in project)
    assert any(f.startswith("securityContext") for f in project)
    assert any(f.startswith("metrics export") for f in project)


def _writer(outputs: list[dict[str, Any]], code: str) -> dict[str, Any]:
    """A one-task manifest whose step runs `code` and declares `outputs` as artifacts."""
    step = _container("step", code, outputs={"artifacts": outputs})
    return _manifest([step], [{"name": "step", "template": "step"}])


@pytest.mark.parametrize(("optional", "wait_fails"), [(False, True), (True, False)])
def test_missing_output_artifact_fails_the_wait_container_unless_optional(
    optional: bool, wait_fails: bool, tmp_path: Path
) -> None:
    """Argo v4.0.5 (executor.go saveArtifact): a required output the step did not write fails
    the wait container whatever the step's exit; an optional one is skipped. The node message
    stays the failed step's own (operator.go inferFailedReason prefers the main container)."""
    artifact = {"name": "data", "path": "/work/data.txt", "optional": optional}
    lines: list[str] = []
    manifest = _writer([artifact], "import sys; sys.exit(1)")
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    assert (result.tasks["step"].phase, result.tasks["step"].exit_code) == ("Failed", 1)
    wait_error = "[step] wait: output artifact /work/data.txt was not written"
    assert (wait_error in lines) is wait_fails
    assert "was not written" not in result.tasks["step"].message


def test_killed_load_keeps_run_and_parts_as_artifacts_without_wait_error(tmp_path: Path) -> None:
    """The project's load outputs on a load whose main process died before merging: run.json
    and the part files are kept (the parts for `python -m steps.load merge`), the missing
    records.parquet fails nothing but the step itself."""
    load = next(
        t
        for t in build_template(BaselineParams(), TemplateOptions()).to_dict()["spec"]["templates"]
        if t["name"] == "load"
    )
    killed = (
        "import pathlib, sys; parts = pathlib.Path('results/records.parts'); "
        "parts.mkdir(parents=True); (parts / 'w0-0.parquet').write_bytes(b'part'); "
        "pathlib.Path('results/run.json').write_text('{}'); sys.exit(137)"
    )
    lines: list[str] = []
    manifest = _writer(load["outputs"]["artifacts"], killed)
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    assert result.tasks["step"].exit_code == 137
    assert not [line for line in lines if "wait:" in line]
    stored = tmp_path / "run" / "artifacts" / "step"
    assert sorted(p.name for p in stored.iterdir()) == ["records-parts", "run"]
    assert (stored / "records-parts" / "w0-0.parquet").read_bytes() == b"part"
