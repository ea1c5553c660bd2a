"""`python -m workflows.baseline render` in-process: files, kinds, precedence, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fakes.argo import FakeArgoSession
from workflows.baseline import main


def test_render_all_writes_every_appliable_kind(tmp_path: Path) -> None:
    """Never the generateName Workflow: `kubectl apply` refuses it and a GitOps sync would start
    a run on every sync. It is rendered on request only."""
    assert main(["render", "--kind", "all", "-o", str(tmp_path)], {}) == 0
    kinds = {p.stem: list(yaml.safe_load_all(p.read_text())) for p in tmp_path.glob("*.yaml")}
    assert {k: [d["kind"] for d in v] for k, v in kinds.items()} == {
        "template": ["WorkflowTemplate"],
        "cron": ["CronWorkflow"],
        "rbac": [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
        ],
    }


def test_render_all_to_stdout_has_no_generate_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--kind", "all"], {}) == 0
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert all("generateName" not in d["metadata"] for d in documents)
    assert main(["render", "--kind", "workflow"], {}) == 0
    (workflow,) = yaml.safe_load_all(capsys.readouterr().out)
    assert workflow["metadata"]["generateName"] == "llm-baseline-"


def test_install_bad_cron_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeArgoSession(lambda request: (500, {}))
    argv = ["install", "--image-registry", "r.example/x", "--cron", "0 3 * * MON-FRI"]
    assert main(argv, {"ARGO_SERVER": "127.0.0.1:2746"}, session) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'0 3 * * MON-FRI'" in err and "1-5" in err
    assert session.requests == []


def test_render_flag_beats_chart_values(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text(
        "benchmark:\n  target:\n    baseUrl: http://from-values:8000\n    modelName: m\n"
    )
    code = main(
        [
            "render",
            "-f",
            str(values),
            "--set",
            "benchmark.target.modelName=n",
            "--base-url",
            "http://from-flag:8000",
        ],
        {},
    )
    assert code == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    values_by_name = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert values_by_name["base_url"] == "http://from-flag:8000"
    assert values_by_name["model_name"] == "n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["render", "--rate", "0"], "parameters: rate: Input should be greater than 0"),
        (["render", "--api-type", "grpc"], "invalid choice: 'grpc'"),
        (["render", "--set", "benchmark.nope=1"], "unknown key 'benchmark.nope'"),
        (["render", "--target-labels", "app"], "--target-labels: 'app' is not key=value"),
        (
            ["render", "--kind", "cron", "--cron", "0 3 * * MON-FRI"],
            "--cron: '0 3 * * MON-FRI' is not a schedule the CronWorkflow CRD of Argo v4.0.5",
        ),
        (
            ["render", "--ca-bundle-configmap", "Corp_CA"],
            "install options: ca_bundle_configmap (--ca-bundle-configmap): String should match",
        ),
    ],
)
def test_render_bad_input_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, {}) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_run_bad_knob_exits_2_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    assert main(["run", "--rate", "-1", "--out", str(out)], environ={}) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("workflows.baseline: parameters: rate:")
    assert "simulator" not in err
    assert not out.exists()
