"""Offline validation of Argo objects: the JSON Schema AND the full CRDs the API server enforces.

1. Argo's JSON Schema (v4.0.5, vendored at tests/data/argo/schema.json; the version hera 7.1 is
   generated from) with two in-memory patches (see tests/data/argo/README.md): IntOrString
   accepts integers as Kubernetes does, and every object definition with `properties` rejects
   unknown keys, so a misspelt field fails instead of being ignored by the controller.
2. The `openAPIV3Schema` of the full CRDs of every vendored Argo release
   (workflows/argo_crds/), turned into plain JSON Schema the way the API server reads a
   structural schema: `x-kubernetes-int-or-string` -> integer or string; an object that lists
   `properties` without `x-kubernetes-preserve-unknown-fields` allows no other keys (the server
   prunes or, with strict field validation, rejects them); other `x-kubernetes-*` keys dropped
   (list/map types, and the CEL `x-kubernetes-validations` rules, which are NOT checked here).
   Patterns such as the CronWorkflow `schedules` one are enforced.

`schema_errors` runs both, so the fake Argo server checks what submit sends the same way.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator

from workflows.argo_crd import CRD_KINDS, CRD_VERSIONS, crd_schema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "data" / "argo" / "schema.json"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


@cache
def _patched_definitions() -> dict[str, Any]:
    definitions = copy.deepcopy(json.loads(SCHEMA_PATH.read_text())["definitions"])
    definitions[_INT_OR_STRING] = {"type": ["integer", "string"]}
    for definition in definitions.values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return definitions


def json_schema_errors(manifest: dict[str, Any], kind: str) -> list[str]:
    """Errors of one manifest against its kind in Argo's JSON Schema, as `path: message`."""
    validator = Draft202012Validator(
        {
            "definitions": _patched_definitions(),
            "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
        }
    )
    return _lines(validator.iter_errors(manifest))


def structural_to_json_schema(node: Any) -> Any:
    """A Kubernetes structural schema as the plain JSON Schema the API server applies."""
    if isinstance(node, list):
        return [structural_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: structural_to_json_schema(value)
        for key, value in node.items()
        if not key.startswith("x-kubernetes-")
    }
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in node and not node.get(_PRESERVE) and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


@cache
def _crd_validator(version: str, kind: str) -> Draft7Validator:
    return Draft7Validator(structural_to_json_schema(crd_schema(version, kind)))


def crd_errors(manifest: dict[str, Any], kind: str, version: str) -> list[str]:
    """Errors of one object against the full CRD of one Argo release, as `path: message`."""
    return _lines(_crd_validator(version, kind).iter_errors(manifest))


#: Argo Server request bodies that carry a whole object: kind -> (key, object kind).
_REQUEST_OBJECTS = {
    "WorkflowCreateRequest": ("workflow", "Workflow"),
    "WorkflowTemplateCreateRequest": ("template", "WorkflowTemplate"),
    "WorkflowTemplateUpdateRequest": ("template", "WorkflowTemplate"),
    "CreateCronWorkflowRequest": ("cronWorkflow", "CronWorkflow"),
    "UpdateCronWorkflowRequest": ("cronWorkflow", "CronWorkflow"),
}


def schema_errors(manifest: dict[str, Any], kind: str) -> list[str]:
    """The JSON Schema errors and every vendored CRD's errors (tagged) of the object itself or,
    for a request body, of the object it carries (what the API server would store)."""
    errors = json_schema_errors(manifest, kind)
    key, object_kind = _REQUEST_OBJECTS.get(kind, (None, kind))
    obj = manifest.get(key) if key is not None else manifest
    if object_kind in CRD_KINDS and isinstance(obj, dict):
        for version in CRD_VERSIONS:
            errors += [f"CRD {version}: {e}" for e in crd_errors(obj, object_kind, version)]
    return errors


def _lines(errors: Any) -> list[str]:
    ordered = sorted(errors, key=lambda e: [str(p) for p in e.path])
    return [f"{'.'.join(str(p) for p in e.path) or '$'}: {e.message}" for e in ordered]
