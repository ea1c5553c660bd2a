"""The pod Argo v4.0.5 builds for a container template, as far as pod security goes.

Mirrors workflow/controller/workflowpod.go `createWorkflowPod` on a stock install (no executor
settings in the controller ConfigMap):
- pod `securityContext`: the template's, else the workflow spec's (`addSchedulingConstraints`);
- Argo's `init` init container and `wait` sidecar: `newExecContainer` gives them the controller's
  `executor.securityContext` (`executor_security_context`; none on a stock install) and nothing
  from the workflow; the main container is the template's `container`;
- volumes: `var-run-argo` and `tmp-dir-argo` emptyDirs, `input-artifacts` emptyDir when the
  template has input artifacts, and the workflow/template volumes;
- last, the workflow's then the template's `podSpecPatch`, a strategic merge patch: lists of
  containers merge by `name`, maps merge recursively, anything else is replaced.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

__all__ = ["argo_pod_spec", "container_templates"]

_EMPTY_DIR_VOLUMES = ("var-run-argo", "tmp-dir-argo")
_MERGE_BY_NAME = ("initContainers", "containers", "volumes")


def container_templates(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in manifest["spec"]["templates"] if "container" in t]


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = _merge(base.get(name), value, name) if name in base else value
        return merged
    if key in _MERGE_BY_NAME and isinstance(base, list) and isinstance(patch, list):
        merged_list = list(base)
        for item in patch:
            index = next((i for i, b in enumerate(base) if b.get("name") == item["name"]), None)
            if index is None:
                merged_list.append(item)
            else:
                merged_list[index] = _merge(base[index], item)
        return merged_list
    return patch


def argo_pod_spec(
    manifest: dict[str, Any],
    template: dict[str, Any],
    executor_security_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The pod spec (Kubernetes field names) of one container template of `manifest`."""
    spec = manifest["spec"]

    def executor(name: str) -> dict[str, Any]:
        container: dict[str, Any] = {"name": name, "image": "quay.io/argoproj/argoexec:v4.0.5"}
        if executor_security_context is not None:
            container["securityContext"] = copy.deepcopy(executor_security_context)
        return container

    volumes = [{"name": name, "emptyDir": {}} for name in _EMPTY_DIR_VOLUMES]
    if template.get("inputs", {}).get("artifacts"):
        volumes.append({"name": "input-artifacts", "emptyDir": {}})
    volumes += copy.deepcopy(spec.get("volumes", []) + template.get("volumes", []))
    pod: dict[str, Any] = {
        "initContainers": [executor("init")],
        "containers": [executor("wait"), {"name": "main", **copy.deepcopy(template["container"])}],
        "volumes": volumes,
    }
    security = template.get("securityContext", spec.get("securityContext"))
    if security is not None:
        pod["securityContext"] = copy.deepcopy(security)
    for holder in (spec, template):
        if "podSpecPatch" in holder:
            pod = _merge(pod, yaml.safe_load(holder["podSpecPatch"]))  # JSON is YAML too
    return pod
