"""The local runner on small manifests (real subprocesses) and its refusals by name."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from steps.errors import UsageError
from tests.helpers.argo.manifests import container_template, dag_manifest, pipeline_manifest
from workflows.local_runner import RunnerEnv, run_template
from workflows.local_subset import cluster_only_fields
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template


def _env(tmp_path: Path, lines: list[str]) -> RunnerEnv:
    return RunnerEnv(sys.executable, {"PATH": "/usr/bin:/bin"}, lines.append, tmp_path / "locks")


def test_run_template_passes_parameters_outputs_and_artifacts(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_template(
        pipeline_manifest("0", "produce"), {"n": "5"}, tmp_path / "run", _env(tmp_path, lines)
    )
    assert result.phase == "Succeeded"
    assert result.tasks["produce"].outputs == {"double": "10"}
    assert "[consume] got 5" in lines
    assert (tmp_path / "run" / "artifacts" / "produce" / "data" / "data.txt").read_text() == "xxxxx"


def test_run_template_failed_task_handled_by_depends_succeeds(tmp_path: Path) -> None:
    manifest = pipeline_manifest("1", "produce.Succeeded || produce.Failed")
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, []))
    assert result.tasks["produce"].phase == "Failed"
    assert result.tasks["consume"].phase == "Succeeded"
    assert result.phase == "Succeeded"


def test_run_template_failed_dependency_omits_task_and_fails(tmp_path: Path) -> None:
    result = run_template(
        pipeline_manifest("1", "produce"), {}, tmp_path / "run", _env(tmp_path, [])
    )
    assert result.tasks["consume"].phase == "Omitted"
    assert result.phase == "Failed"


def test_run_template_retry_expression_stops_on_usage_exit(tmp_path: Path) -> None:
    manifest = pipeline_manifest("2", "produce")
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
    manifest = dag_manifest(
        [
            container_template(
                "sleep", "import time; time.sleep(30)", activeDeadlineSeconds="{{=1 + 0}}"
            )
        ],
        [{"name": "sleep", "template": "sleep"}],
    )
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, []))
    assert result.tasks["sleep"].phase == "Failed"
    assert "activeDeadlineSeconds" in result.tasks["sleep"].message


def test_run_template_unknown_parameter_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown workflow parameter 'rate'"):
        run_template(pipeline_manifest("0", "produce"), {"rate": "1"}, tmp_path, _env(tmp_path, []))


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
    manifest = pipeline_manifest(exit_code, "produce.Succeeded || produce.Failed")
    manifest["spec"]["templates"][-1]["dag"]["tasks"][1]["when"] = "{{tasks.produce.exitCode}} < 2"
    lines: list[str] = []
    result = run_template(manifest, {}, tmp_path / "run", _env(tmp_path, lines))
    assert result.tasks["consume"].phase == ("Succeeded" if consumed else "Skipped")
    assert result.phase == phase


def _reporter(depends: str, value: str) -> dict[str, Any]:
    """The pipeline plus a task that prints `value` after `depends`."""
    manifest = pipeline_manifest("1", "produce")
    report = container_template(
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
    manifest = pipeline_manifest("1", "produce")
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
    manifest = pipeline_manifest("0", "produce")
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
    manifest = pipeline_manifest("0", "produce")
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
    step = container_template("step", code, outputs={"artifacts": outputs})
    return dag_manifest([step], [{"name": "step", "template": "step"}])


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


_SHARD = (
    "import sys, pathlib; i = int(sys.argv[1]); pathlib.Path('out').mkdir(); "
    "pathlib.Path('out/n.txt').write_text(str(i) + '@' + sys.argv[2]); sys.exit(int(i == 2))"
)
_GATHER = (
    "import sys, pathlib; "
    "print('shards', sorted(p.read_text() for p in pathlib.Path(sys.argv[1]).glob('*/n.txt')))"
)


def _fanout_manifest(count: str) -> dict[str, Any]:
    """A daemon, a `withSequence` task writing key-only artifacts (instance 2 exits 1), and a
    task reading their common prefix."""
    daemon = container_template(
        "serve", "import time; time.sleep(600)", daemon=True, inputs={"parameters": []}
    )
    shard = container_template(
        "shard",
        _SHARD,
        inputs={"parameters": [{"name": "i"}, {"name": "ip"}]},
        outputs={"artifacts": [{
            "name": "n", "path": "/work/out/n.txt", "archive": {"none": {}},
            "s3": {"key": "{{workflow.name}}/shards/{{inputs.parameters.i}}/n.txt"},
        }]},
    )  # fmt: skip
    shard["container"]["args"] = ["{{inputs.parameters.i}}", "{{inputs.parameters.ip}}"]
    gather = container_template(
        "gather",
        _GATHER,
        inputs={
            "artifacts": [
                {"name": "all", "path": "/work/in", "s3": {"key": "{{workflow.name}}/shards"}}
            ]
        },
    )
    gather["container"]["args"] = ["{{inputs.artifacts.all.path}}"]
    return dag_manifest(
        [daemon, shard, gather],
        [
            {"name": "serve", "template": "serve"},
            {
                "name": "shard", "template": "shard", "depends": "serve",
                "withSequence": {"count": count},
                "arguments": {"parameters": [
                    {"name": "i", "value": "{{item}}"},
                    {"name": "ip", "value": "{{tasks.serve.ip}}"},
                ]},
            },
            {"name": "gather", "template": "gather", "depends": "shard.Succeeded || shard.Failed"},
        ],
    )  # fmt: skip


def test_with_sequence_daemon_and_key_only_artifacts(tmp_path: Path) -> None:
    """Instances run as `shard(i:i)` with `{{item}}`, the group fails when one does (naming it),
    the daemon's IP resolves and it is stopped at the end, and a prefix key gives every
    instance's files to the next task."""
    lines: list[str] = []
    result = run_template(_fanout_manifest("3"), {}, tmp_path / "run", _env(tmp_path, lines))
    assert result.tasks["serve"].phase == "Daemoned"
    assert [result.tasks[f"shard({i}:{i})"].phase for i in range(3)] == [
        "Succeeded", "Succeeded", "Failed",
    ]  # fmt: skip
    assert result.tasks["shard"].phase == "Failed"
    assert "shard(2:2) failed" in result.tasks["shard"].message
    assert "[gather] shards ['0@127.0.0.1', '1@127.0.0.1', '2@127.0.0.1']" in lines
    assert "[serve] daemon stopped (the DAG ended)" in lines
    assert result.phase == "Succeeded"  # gather, the leaf, took the failure in its depends
