"""RBAC for the benchmark's pods, least privilege (`render --kind rbac`).

- ServiceAccount the workflow pods run as (annotate it for IRSA or associate it with EKS Pod
  Identity to give the report step write access to the results bucket).
- Role + RoleBinding in the workflows' namespace: Argo's executor (the `wait` sidecar) records
  outputs as `workflowtaskresults` and needs create + patch on them, nothing else.
- Role + RoleBinding in the TARGET namespace: `list` pods, for the readiness step's check that the
  model pods exist (a required zone affinity to no pods leaves the load pod Pending forever),
  and for the load step to find the Ready model pods whose /metrics it scrapes.
- ClusterRole + ClusterRoleBinding: `get` nodes (cluster-scoped) to read the pods' zones.
"""

from __future__ import annotations

from typing import Any

from workflows.options import TemplateOptions
from workflows.params import BaselineParams

__all__ = ["build_rbac"]

_RBAC = "rbac.authorization.k8s.io/v1"


def _binding(
    kind: str, name: str, namespace: str | None, options: TemplateOptions
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    role_kind = "ClusterRole" if kind == "ClusterRoleBinding" else "Role"
    return {
        "apiVersion": _RBAC,
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": options.service_account,
                "namespace": options.namespace,
            }
        ],
    }


def build_rbac(params: BaselineParams, options: TemplateOptions) -> list[dict[str, Any]]:
    """The RBAC objects, in apply order."""
    executor = f"{options.name}-executor"
    pod_reader = f"{options.name}-target-pods"
    node_reader = f"{options.name}-{options.namespace}-nodes"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": options.service_account, "namespace": options.namespace},
        },
        {
            "apiVersion": _RBAC,
            "kind": "Role",
            "metadata": {"name": executor, "namespace": options.namespace},
            "rules": [
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["workflowtaskresults"],
                    "verbs": ["create", "patch"],
                }
            ],
        },
        _binding("RoleBinding", executor, options.namespace, options),
        {
            "apiVersion": _RBAC,
            "kind": "Role",
            "metadata": {"name": pod_reader, "namespace": params.target_namespace},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
        _binding("RoleBinding", pod_reader, params.target_namespace, options),
        {
            "apiVersion": _RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": node_reader},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        },
        _binding("ClusterRoleBinding", node_reader, None, options),
    ]
