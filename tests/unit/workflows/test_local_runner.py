"""The local runner on small manifests (real subprocesses) and its refusals by name."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from steps.errors import UsageError
from workflows.local_runner import RunnerEnv, UnsupportedFeature, check_supported, run_template
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
        (lambda m: m["spec"]["templates"][-1]["dag"]["tasks"][0].update(when="x"), "'when'"),
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
    ],
)
def test_check_supported_refuses_feature_by_name(mutate: Any, name: str) -> None:
    manifest = copy.deepcopy(_pipeline("0", "produce"))
    mutate(manifest)
    with pytest.raises(UnsupportedFeature, match=name):
        check_supported(manifest)


def test_check_supported_accepts_project_template() -> None:
    check_supported(build_template(BaselineParams(), TemplateOptions()).to_dict())
