"""What of an Argo manifest the local runner emulates, what it accepts without effect, and the
refusal of everything else by name.

`SUBSET` is the one list: each key maps to a nested spec (a mapping), True (emulated) or None
(accepted, cluster-only: no local effect). `emulated_summary()` and `cluster_only_fields()` read
it; the README quotes the summary and a test keeps the two equal. A manifest field outside it raises
`UnsupportedFeature` naming the field and its place, so a manifest change the local run cannot
mirror fails loudly instead of running something different.
"""

from __future__ import annotations

from typing import Any

from steps.errors import UsageError

__all__ = [
    "SUBSET",
    "UnsupportedFeature",
    "check_supported",
    "cluster_only_fields",
    "emulated_summary",
    "templates_by_name",
]

Manifest = dict[str, Any]


class UnsupportedFeature(UsageError):
    """The manifest uses an Argo feature the local runner does not implement."""


_PARAM = {"name": True, "value": True, "default": True, "description": True, "enum": True}
SUBSET: dict[str, Any] = {
    "apiVersion": True,
    "kind": True,
    "metadata": True,  # the object's own name and labels: nothing to run
    "spec": {
        "entrypoint": True,
        "arguments": {"parameters": _PARAM},
        "activeDeadlineSeconds": True,
        "synchronization": {"mutexes": {"name": True}},
        "serviceAccountName": None,
        "podGC": None,
        "ttlStrategy": None,
        "artifactRepositoryRef": None,
        "podMetadata": None,
        "securityContext": None,
        "podSpecPatch": None,
        "templates": {
            "name": True,
            "inputs": {
                "parameters": _PARAM,
                "artifacts": {
                    "name": True,
                    "path": True,
                    "optional": True,
                    "raw": {"data": True},
                    "s3": {"key": True},
                },
            },
            "outputs": {
                "parameters": {"name": True, "valueFrom": {"path": True, "default": True}},
                "artifacts": {
                    "name": True,
                    "path": True,
                    "optional": True,
                    "archive": {"none": True},
                    "s3": {"key": True},
                },
            },
            "daemon": True,
            "container": {
                "command": True,
                "args": True,
                "workingDir": True,
                "env": {
                    "name": True,
                    "value": True,
                    "valueFrom": {"secretKeyRef": {"name": True, "key": True, "optional": True}},
                },
                "image": None,
                "imagePullPolicy": None,
                "resources": None,
                "securityContext": None,
                "readinessProbe": None,
            },
            "dag": {
                "tasks": {
                    "name": True,
                    "template": True,
                    "depends": True,
                    "when": True,
                    "withSequence": {"count": True},
                    "arguments": {
                        "parameters": {"name": True, "value": True},
                        "artifacts": {"name": True, "from": True, "optional": True},
                    },
                }
            },
            "retryStrategy": {
                "limit": True,
                "retryPolicy": True,
                "expression": True,
                "backoff": {"duration": True, "factor": True, "maxDuration": True},
            },
            "activeDeadlineSeconds": True,
            "timeout": None,
            "metrics": {
                "prometheus": {
                    "name": True,
                    "help": True,
                    "when": True,
                    "labels": {"key": True, "value": True},
                    "gauge": {"value": True, "realtime": True},
                }
            },
            "affinity": None,
            "serviceAccountName": None,
            "metadata": None,
        },
    },
}
#: Retry policies whose meaning holds here, where every failure is a step's non-zero exit
#: (no controller or executor errors): OnError would retry on none of them.
_RETRY_POLICIES = ("Always", "OnFailure")

#: What a cluster-only field means for a local run, where it is not obvious.
_CLUSTER_ONLY_NOTES = {
    "timeout": "timeout (no Pending phase here)",
    "securityContext": "securityContext (steps run as this user)",
    "metadata": "pod metadata",
}


def _walk(node: Any, spec: Any, where: str, cluster_only: set[str] | None = None) -> None:
    if spec is True:
        return
    if spec is None:
        if cluster_only is not None:
            cluster_only.add(where.rpartition(".")[2])
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, spec, f"{where}[{i}]", cluster_only)
        return
    if not isinstance(node, dict):
        raise UnsupportedFeature(f"local runner: {where} is not a mapping")
    for key, value in node.items():
        if key not in spec:
            raise UnsupportedFeature(
                f"local runner: '{key}' at {where or '(root)'} is not supported "
                f"(supported there: {', '.join(sorted(spec))})"
            )
        _walk(value, spec[key], f"{where}.{key}" if where else key, cluster_only)


def _fully_emulated(spec: Any) -> bool:
    return spec is True or (isinstance(spec, dict) and all(map(_fully_emulated, spec.values())))


def _summary(spec: dict[str, Any]) -> str:
    parts: list[str] = []
    for key, value in spec.items():
        if _fully_emulated(value):
            parts.append(key)
        elif isinstance(value, dict):
            parts.append(f"{key}{{{_summary(value)}}}")
    return ", ".join(parts)


def emulated_summary() -> str:
    """The fields the local runner acts on, one line: `a{b, c}` = of `a` only `b` and `c`; a
    name alone = all of it (in the forms SUBSET lists). The README quotes it."""
    return _summary(SUBSET)


def cluster_only_fields(manifest: Manifest) -> list[str]:
    """The fields of `manifest` a cluster acts on and the local runner does not (sorted)."""
    found: set[str] = set()
    _walk(manifest, SUBSET, "", found)
    fields = [_CLUSTER_ONLY_NOTES.get(name, name) for name in sorted(found)]
    if any("metrics" in t for t in manifest["spec"].get("templates", [])):
        fields.append("metrics export (gauges are computed here, never sent to Prometheus)")
    return fields


def templates_by_name(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The manifest's templates by name."""
    return {t["name"]: t for t in manifest["spec"].get("templates", [])}


def _check_template(template: dict[str, Any]) -> None:
    name = template.get("name", "?")
    kinds = [k for k in ("container", "dag") if k in template]
    if len(kinds) != 1:
        raise UnsupportedFeature(f"local runner: template '{name}' must be a container or a dag")
    container = template.get("container")
    if container is not None and (container.get("command") or [None])[0] != "python":
        raise UnsupportedFeature(
            f"local runner: template '{name}' command must start with 'python' "
            "(steps run as python -m steps.<name>)"
        )
    policy = template.get("retryStrategy", {}).get("retryPolicy", "Always")
    if policy not in _RETRY_POLICIES:
        raise UnsupportedFeature(
            f"local runner: template '{name}' retryStrategy.retryPolicy '{policy}' is not "
            f"supported (supported: {', '.join(_RETRY_POLICIES)})"
        )


def check_supported(manifest: Manifest) -> None:
    """Raise `UnsupportedFeature` naming the first field outside the supported subset."""
    _walk(manifest, SUBSET, "")
    spec = manifest["spec"]
    for template in spec.get("templates", []):
        _check_template(template)
    templates = templates_by_name(manifest)
    entry = templates.get(spec.get("entrypoint", ""))
    if entry is None or "dag" not in entry:
        raise UnsupportedFeature("local runner: the entrypoint must name a dag template")
    for task in entry["dag"]["tasks"]:
        target = templates.get(task["template"])
        if target is None or "container" not in target:
            raise UnsupportedFeature(
                f"local runner: task '{task['name']}' must call a container template "
                "(nested dags are not supported)"
            )
