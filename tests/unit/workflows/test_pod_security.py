"""Every pod the project renders passes Pod Security "restricted" and starts as a numeric user.

The WorkflowTemplate's pods are checked as Argo v4.0.5 builds them (tests/helpers/argo/
pod.py): the workflow's pod securityContext, Argo's own init and wait containers with a
stock controller's (empty) executor settings, the step's container, and the podSpecPatch.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.argo.pod import argo_pod_spec, container_templates
from tests.helpers.argo.pss_restricted import pss_restricted_violations
from tests.helpers.argo.rendered import rendered_objects
from tests.helpers.dockerfile_targets import REPO, dockerfile_targets
from workflows.options import STEPS, TemplateOptions
from workflows.params import BaselineParams
from workflows.pod_security import RUN_AS_ID
from workflows.simulator_target import build_simulator_target
from workflows.template import build_template

#: Every optional piece that adds volumes, env or mounts to a pod.
_FULL_OPTIONS = TemplateOptions(
    api_key_secret="vllm-key", ca_bundle_configmap="corp-ca", artifact_repository_configmap="a"
)


def _template(options: TemplateOptions = _FULL_OPTIONS) -> dict[str, Any]:
    return build_template(BaselineParams(), options).to_dict()


def _pod_specs() -> dict[str, dict[str, Any]]:
    """Every pod spec the benchmark renders: one per step, and the simulator target's."""
    template = _template()
    pods = {t["name"]: argo_pod_spec(template, t) for t in container_templates(template)}
    deployment = build_simulator_target(BaselineParams(), _FULL_OPTIONS)[0]
    pods["simulator"] = deployment["spec"]["template"]["spec"]
    return pods


def test_pod_specs_cover_every_step_and_the_simulator() -> None:
    pods = _pod_specs()
    assert set(pods) == {*STEPS, "simulator"}
    assert [c["name"] for c in pods["simulator"]["initContainers"]] == ["tokenizer"]
    assert [c["name"] for c in pods["load"]["containers"]] == ["wait", "main"]
    assert [c["name"] for c in pods["load"]["initContainers"]] == ["init"]


@pytest.mark.parametrize("pod", [*STEPS, "simulator"])
def test_every_pod_passes_pod_security_restricted(pod: str) -> None:
    assert pss_restricted_violations(_pod_specs()[pod]) == []


def test_argo_executor_containers_fail_restricted_without_the_pod_spec_patch() -> None:
    """What a stock Argo install does with the workflow alone: the patch is what fixes it."""
    template = _template()
    del template["spec"]["podSpecPatch"]
    load = next(t for t in container_templates(template) if t["name"] == "load")
    violations = pss_restricted_violations(argo_pod_spec(template, load))
    assert any(v.startswith("container init: allowPrivilegeEscalation") for v in violations)
    assert any(v.startswith("container wait: capabilities.drop") for v in violations)
    assert not any(v.startswith("container main") for v in violations)


def _compliant() -> dict[str, Any]:
    return copy.deepcopy(_pod_specs()["load"])


def _main(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["containers"] if c["name"] == "main")


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda p: p.update(hostNetwork=True), "pod: hostNetwork"),
        (lambda p: _main(p)["securityContext"].update(privileged=True), "privileged"),
        (lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
        (lambda p: p["volumes"].append({"name": "n", "nfs": {"server": "s"}}), "volume type"),
        (lambda p: p["securityContext"].pop("seccompProfile"), "seccompProfile unset"),
        (
            lambda p: p["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            "pod: seccompProfile",
        ),
        (lambda p: p["securityContext"].pop("runAsNonRoot"), "runAsNonRoot must be true"),
        (lambda p: _main(p)["securityContext"].update(runAsUser=0), "runAsUser 0"),
        (
            lambda p: _main(p)["securityContext"].update(allowPrivilegeEscalation=True),
            "allowPrivilegeEscalation must be false",
        ),
        (lambda p: _main(p)["securityContext"].pop("capabilities"), "drop must include ALL"),
        (
            lambda p: _main(p)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            "capabilities.add beyond NET_BIND_SERVICE",
        ),
        (lambda p: _main(p).update(ports=[{"containerPort": 1, "hostPort": 1}]), "hostPort"),
        (
            lambda p: p["securityContext"].update(
                sysctls=[{"name": "kernel.msgmax", "value": "1"}]
            ),
            "unsafe sysctl",
        ),
        (lambda p: _main(p)["securityContext"].update(procMount="Unmasked"), "procMount"),
    ],
)
def test_checker_reports_each_broken_rule(mutate: Any, rule: str) -> None:
    pod = _compliant()
    mutate(pod)
    violations = pss_restricted_violations(pod)
    assert any(rule in v for v in violations), violations


def _security_contexts(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every `securityContext` mapping in a rendered object, with its path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "securityContext" and isinstance(value, dict):
                found.append((f"{where}.{key}", value))
            found += _security_contexts(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _security_contexts(item, f"{where}[{i}]")
    return found


def test_run_as_user_is_set_wherever_run_as_non_root_is(tmp_path: Path) -> None:
    """argo #8541: runAsNonRoot without a numeric user stops Argo's argoexec containers."""
    objects = rendered_objects(tmp_path, "--ca-bundle-configmap", "corp-ca")
    contexts = [(f"{o['kind']}{path}", sc) for o in objects for path, sc in _security_contexts(o)]
    non_root = [(path, sc) for path, sc in contexts if sc.get("runAsNonRoot")]
    assert {path.split(".")[0] for path, _ in non_root} == {
        "WorkflowTemplate",
        "Deployment",
    }
    for path, sc in non_root:
        assert sc.get("runAsUser") == RUN_AS_ID, path
        assert sc.get("runAsGroup") == RUN_AS_ID, path
        assert sc.get("fsGroup") == RUN_AS_ID, path


def test_run_as_id_is_the_images_user_and_group() -> None:
    """/work belongs to this user and group in every image (images/Dockerfile)."""
    for step, target in dockerfile_targets().items():
        if step != "base":
            assert target["user"] == str(RUN_AS_ID), step
    dockerfile = (REPO / "images" / "Dockerfile").read_text()
    assert f"groupadd --gid {RUN_AS_ID} bench" in dockerfile
    assert f"useradd --uid {RUN_AS_ID} --gid {RUN_AS_ID}" in dockerfile


def test_every_pod_of_a_load_over_several_pods_passes_pod_security_restricted() -> None:
    """`--load-pods 3` adds the coordinator daemon's pod and keeps the load pod's spec."""
    template = _template(_FULL_OPTIONS.model_copy(update={"load_pods": 3}))
    pods = {t["name"]: argo_pod_spec(template, t) for t in container_templates(template)}
    assert set(pods) == {*STEPS, "coordinator"}
    for name, pod in pods.items():
        assert pss_restricted_violations(pod) == [], name
