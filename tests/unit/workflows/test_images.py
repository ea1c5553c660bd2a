"""images/Dockerfile parsed: every template image maps to a target that fits its template."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from workflows.options import STEPS, TemplateOptions
from workflows.params import BaselineParams
from workflows.template import build_template

REPO = Path(__file__).resolve().parents[3]


def _targets() -> dict[str, dict[str, object]]:
    """Build target -> {from, extras, entrypoint, user, workdir} from the Dockerfile."""
    targets: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    for line in (REPO / "images" / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line):
            current = {"from": match.group(1), "extras": [], "user": None}
            targets[match.group(2)] = current
        elif match := re.search(r'pip install .*"\.\[([a-z,]+)\]"', line):
            current["extras"] = match.group(1).split(",")
        elif line.startswith("ENTRYPOINT"):
            current["entrypoint"] = json.loads(line.removeprefix("ENTRYPOINT"))
        elif line.startswith("USER"):
            current["user"] = line.split()[1]
        elif line.startswith("WORKDIR"):
            current["workdir"] = line.split()[1]
    return targets


def test_every_template_image_has_a_fitting_target() -> None:
    targets = _targets()
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
