"""README "Running on EKS" states what the code enforces and emits: the minimum Argo version and
the exact Prometheus metric names (Argo >= 3.6 prefixes custom metrics with `argo_workflows_`)."""

from __future__ import annotations

import re

from tests.helpers.dockerfile_targets import REPO
from workflows.argo_version import MIN_ARGO_VERSION
from workflows.options import TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template

ARGO_METRIC_PREFIX = "argo_workflows_"


def _section() -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^## Running on EKS\n(.*?)^## ", readme, re.M | re.S)
    assert match, "README.md has no '## Running on EKS' section"
    return match.group(1)


def test_readme_eks_names_exactly_the_gauges_the_template_emits() -> None:
    manifest = build_template(BaselineParams(), TemplateOptions()).to_dict()
    emitted = {
        ARGO_METRIC_PREFIX + metric["name"]
        for template in manifest["spec"]["templates"]
        for metric in template.get("metrics", {}).get("prometheus", [])
    }
    assert emitted
    assert set(re.findall(rf"\b{ARGO_METRIC_PREFIX}\w+", _section())) == emitted


def test_readme_eks_states_the_minimum_argo_version() -> None:
    version = "v" + ".".join(map(str, MIN_ARGO_VERSION))
    assert f"**1. Argo Workflows ≥ {version}**" in _section()
