"""Kubernetes objects checked against the `kubernetes` client's own models (no API server here):
deserialized into the model of their kind and serialized back, an object must come out unchanged
(a misspelt or misplaced key is dropped on the way and fails the comparison)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client import ApiClient

__all__ = ["MODELS", "round_trip"]

#: kind -> the client's model name.
MODELS = {
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "ClusterRole": "V1ClusterRole",
    "ClusterRoleBinding": "V1ClusterRoleBinding",
}


class _Response:
    """What `ApiClient.deserialize` reads: a body in `.data`."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.data = json.dumps(obj)


def round_trip(obj: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """`obj` through the model of its kind (or `model`) and back."""
    api = ApiClient()
    value = api.deserialize(_Response(obj), model or MODELS[obj["kind"]])
    result: dict[str, Any] = api.sanitize_for_serialization(value)
    return result
