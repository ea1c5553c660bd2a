"""The full CRDs Argo installs, vendored in `workflows/argo_crds/` (source and checksums there).

With Argo v4's full CRDs the Kubernetes API server itself validates every Workflow,
WorkflowTemplate and CronWorkflow against the CRD's `openAPIV3Schema`: a value the CRD's
pattern refuses never reaches the controller. The CLI reads a rule from here instead of
restating it (the CronWorkflow `schedules` pattern), and the tests validate every rendered
object against each vendored version.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CRD_KINDS", "CRD_VERSIONS", "OLDEST_CRD_VERSION", "crd_schema", "cron_schedule_pattern"]

_CRD_DIR = Path(__file__).resolve().parent / "argo_crds"
#: Vendored Argo releases, oldest first. The oldest is the strictest on cron schedules.
CRD_VERSIONS = ("v4.0.5", "v4.1.2")
OLDEST_CRD_VERSION = CRD_VERSIONS[0]
#: Object kind -> CRD file stem.
CRD_KINDS = {
    "Workflow": "workflows",
    "WorkflowTemplate": "workflowtemplates",
    "CronWorkflow": "cronworkflows",
}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 0.3 s instead of 10 s


@cache
def crd_schema(version: str, kind: str) -> dict[str, Any]:
    """The `openAPIV3Schema` of one vendored CRD, unmodified (callers must not mutate it)."""
    path = _CRD_DIR / version / f"{CRD_KINDS[kind]}.yaml.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        crd = yaml.load(handle, Loader=_Loader)
    (served,) = crd["spec"]["versions"]
    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
    return schema


def cron_schedule_pattern(version: str = OLDEST_CRD_VERSION) -> str:
    """The regular expression the CronWorkflow CRD of `version` enforces on each schedule."""
    schedules = crd_schema(version, "CronWorkflow")["properties"]["spec"]["properties"]["schedules"]
    pattern: str = schedules["items"]["pattern"]
    return pattern
