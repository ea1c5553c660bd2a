"""Offline validation against Argo's JSON Schema (v4.0.5, the version hera 7.1 is generated from).

The schema lives outside the repository, at `<repo>/../shared/argo/schema.json` (CI clones the repo
next to `shared/`). Two in-memory patches make it useful (see shared/argo/README.md):
IntOrString accepts integers as Kubernetes does, and every object definition with `properties`
rejects unknown keys, so a misspelt field fails instead of being ignored by the controller.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = REPO_ROOT.parent / "shared" / "argo" / "schema.json"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


@cache
def _patched_definitions() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(
            f"Argo JSON Schema not found at {SCHEMA_PATH}: the repository must sit next to "
            "shared/ (shared/argo/schema.json, Argo v4.0.5)"
        )
    definitions = copy.deepcopy(json.loads(SCHEMA_PATH.read_text())["definitions"])
    definitions[_INT_OR_STRING] = {"type": ["integer", "string"]}
    for definition in definitions.values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return definitions


def schema_errors(manifest: dict[str, Any], kind: str) -> list[str]:
    """Validation errors of one manifest against its kind, as `path: message` lines."""
    validator = Draft202012Validator(
        {
            "definitions": _patched_definitions(),
            "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
        }
    )
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    return [f"{'.'.join(str(p) for p in e.path) or '$'}: {e.message}" for e in errors]
