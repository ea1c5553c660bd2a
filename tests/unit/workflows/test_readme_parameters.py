"""README "Parameters" table names every knob, and only knobs: a parameter added to
`BaselineParams` (or renamed) without its row fails here."""

from __future__ import annotations

import re

from tests.helpers.argo.rendered import scenario_params
from tests.helpers.dockerfile_targets import REPO
from workflows.scenarios import ScenarioName


def _table_names() -> list[str]:
    """The backticked names in the first column of the README's parameter table."""
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^### Parameters \(.*?\)\n(.*?)^### ", readme, re.M | re.S)
    assert match, "README.md has no '### Parameters' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])]


def test_readme_parameter_table_lists_every_knob_once() -> None:
    names = _table_names()
    assert len(names) == len(set(names))
    every_scenarios = {k for s in ScenarioName for k in scenario_params(s).knobs}
    assert set(names) == every_scenarios
