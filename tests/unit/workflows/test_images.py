"""images/Dockerfile parsed: every template image maps to a target that fits its template."""

from __future__ import annotations

import re
import tomllib

from tests.unit.workflows.dockerfile_targets import REPO, dockerfile_targets
from workflows.options import STEPS, TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template


def test_every_template_image_has_a_fitting_target() -> None:
    targets = dockerfile_targets()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    options = TemplateOptions(image_registry="reg.example/bench", image_tag="1.2.3")
    manifest = build_template(BaselineParams(), options).to_dict()
    for template in manifest["spec"]["templates"]:
        if "container" not in template:
            continue
        container = template["container"]
        registry, _, rest = container["image"].rpartition("/")
        target_name, _, tag = rest.partition(":")
        assert (registry, tag) == ("reg.example/bench", "1.2.3")
        target = targets[target_name]
        assert target["from"] == "base"
        assert target["entrypoint"] == container["command"]
        assert target["extras"] == [template["name"]], "only the step's own extra"
        assert template["name"] in extras
        assert target["user"] not in (None, "0", "root")
        assert target["workdir"] == container["workingDir"]
    assert {t["name"] for t in manifest["spec"]["templates"] if "container" in t} == set(STEPS)


def test_base_image_is_slim_python() -> None:
    text = (REPO / "images" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim AS base$", text, re.M)
