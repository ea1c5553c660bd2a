"""Security settings of every pod the project renders: Pod Security Standards "restricted".

One home for them, used by the WorkflowTemplate (all five steps) and the simulator target.
Why each piece is there:
- `runAsUser`/`runAsGroup`/`fsGroup` 10001, the images' `bench` user and group, owner of
  `/work` (images/Dockerfile). `runAsNonRoot` alone is not enough on Argo: the workflow's pod
  security context reaches Argo's own `init`/`wait` containers too, and the argoexec image
  declares no USER, so the kubelet refuses them ("container has runAsNonRoot and image will run
  as root", argo issue #8541) unless a numeric user is given.
- `seccompProfile: RuntimeDefault` at pod level covers every container, Argo's included.
- `allowPrivilegeEscalation: false` and `capabilities.drop: [ALL]` exist only per container.
  Argo v4.0.5 gives its `init`/`wait` containers the controller's `executor.securityContext`
  (workflow-controller ConfigMap; empty on a stock install) and nothing from the workflow, so
  the workflow's `podSpecPatch` sets them: Argo applies it last, as a strategic merge patch
  keyed by container name, to every pod it builds (workflow/controller/workflowpod.go).
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = [
    "ARGO_EXECUTOR_CONTAINERS",
    "RUN_AS_ID",
    "container_security_context",
    "executor_pod_spec_patch",
    "pod_security_context",
]

#: The images' user and group (images/Dockerfile `bench`).
RUN_AS_ID = 10001
#: Argo's own containers in every pod it builds for a container template: (list, name).
ARGO_EXECUTOR_CONTAINERS = (("initContainers", "init"), ("containers", "wait"))

_POD: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_ID,
    "runAsGroup": RUN_AS_ID,
    "fsGroup": RUN_AS_ID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def pod_security_context() -> dict[str, Any]:
    """A fresh pod-level securityContext (Kubernetes field names)."""
    return copy.deepcopy(_POD)


def container_security_context() -> dict[str, Any]:
    """A fresh container-level securityContext (Kubernetes field names)."""
    return copy.deepcopy(_CONTAINER)


def executor_pod_spec_patch() -> str:
    """The workflow `podSpecPatch` that gives Argo's init and wait containers the container
    securityContext (JSON, which Argo accepts as its YAML patch)."""
    patch: dict[str, list[dict[str, Any]]] = {}
    for field, name in ARGO_EXECUTOR_CONTAINERS:
        patch.setdefault(field, []).append(
            {"name": name, "securityContext": container_security_context()}
        )
    return json.dumps(patch, sort_keys=True)
