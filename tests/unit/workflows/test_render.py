"""`python -m workflows.baseline render`: the kinds it writes, to files or stdout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
