"""README's workflow sections never call the load pod's zone affinity required without naming
`--zone-affinity`: it is an install option (required, preferred or off), not a fixed rule."""

from __future__ import annotations

import re

import pytest

from steps.shared import ZoneAffinity
from tests.helpers.dockerfile_targets import REPO

SECTIONS = ("The workflow CLI", "Running on EKS")


def _section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}.*?\n(.*?)^## ", readme, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def _sentences(text: str) -> list[str]:
    """Sentences and table rows, whitespace folded (a sentence may span lines)."""
    return [" ".join(s.split()) for s in re.split(r"(?<=[.;])\s+|\n(?=\|)", text)]


@pytest.mark.parametrize("title", SECTIONS)
def test_required_affinity_is_always_said_to_be_the_install_default(title: str) -> None:
    claims = [
        s
        for s in _sentences(_section(title))
        if re.search(r"\brequired\b", s, re.I) and re.search(r"affinity", s, re.I)
    ]
    assert claims, f"{title}: the load pod's zone affinity is not described"
    assert [s for s in claims if "--zone-affinity" not in s] == []


def test_every_zone_affinity_mode_is_named() -> None:
    text = "\n".join(_section(title) for title in SECTIONS)
    for mode in ZoneAffinity:
        assert re.search(rf"--zone-affinity [a-z|]*\b{mode.value}\b", text), mode.value
