"""`--zone-affinity required|preferred|off`: the load pod's affinity and what readiness is told.

Rendered through the CLI, validated against Argo's schema and the graph lint, which checks that
the load pod's affinity and the readiness step's `--zone-affinity` agree.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.helpers.argo.schema import schema_errors
from workflows.baseline import main
from workflows.graph_lint import lint_template

TERM = {
    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "qwen3-vllm"}},
    "namespaces": ["{{inputs.parameters.target_namespace}}"],
    "topologyKey": "topology.kubernetes.io/zone",
}


def _render(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    assert main(["render", *flags], {}) == 0
    manifest: dict[str, Any] = yaml.safe_load(capsys.readouterr().out)
    return manifest


def _template(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in manifest["spec"]["templates"] if t["name"] == name)
    return found


def _readiness_mode(manifest: dict[str, Any]) -> str:
    args = _template(manifest, "readiness")["container"]["args"]
    return str(args[args.index("--zone-affinity") + 1])


@pytest.mark.parametrize(
    ("flags", "mode", "affinity"),
    [
        (
            [],
            "required",
            {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [TERM]}},
        ),
        (
            ["--zone-affinity", "preferred"],
            "preferred",
            {
                "podAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": TERM}
                    ]
                }
            },
        ),
        (["--zone-affinity", "off"], "off", None),
    ],
)
def test_zone_affinity_modes_render_valid_consistent_manifests(
    flags: list[str], mode: str, affinity: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _render(capsys, *flags)
    assert _template(manifest, "load").get("affinity") == affinity
    assert _readiness_mode(manifest) == mode
    assert schema_errors(manifest, "WorkflowTemplate") == []
    assert lint_template(manifest) == []


def test_zone_affinity_bad_value_is_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "--zone-affinity", "sometimes"], {}) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workflows.baseline: install options: zone_affinity (--zone-affinity):")
    assert "'required', 'preferred' or 'off'" in err


def _off_readiness_with_required_load(m: dict[str, Any]) -> None:
    args = _template(m, "readiness")["container"]["args"]
    args[args.index("--zone-affinity") + 1] = "off"


def _preferred_weak(m: dict[str, Any]) -> None:
    term = _template(m, "load")["affinity"]["podAffinity"]
    term["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] = 10


def _preferred_without_namespaces(m: dict[str, Any]) -> None:
    term = _template(m, "load")["affinity"]["podAffinity"]
    del term["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["namespaces"]


def _required_but_readiness_says_preferred(m: dict[str, Any]) -> None:
    _template(m, "load")["affinity"] = {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [TERM]}
    }


@pytest.mark.parametrize(
    ("flags", "breaker", "expected"),
    [
        (
            [],
            _off_readiness_with_required_load,
            "has podAffinity but readiness says zone affinity off",
        ),
        (["--zone-affinity", "preferred"], _preferred_weak, "needs preferred podAffinity"),
        (["--zone-affinity", "preferred"], _preferred_without_namespaces, "needs preferred"),
        (
            ["--zone-affinity", "preferred"],
            _required_but_readiness_says_preferred,
            "needs preferred",
        ),
    ],
)
def test_graph_lint_catches_affinity_that_disagrees_with_readiness(
    flags: list[str], breaker: Any, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = copy.deepcopy(_render(capsys, *flags))
    breaker(manifest)
    assert any(expected in p for p in lint_template(manifest)), lint_template(manifest)
