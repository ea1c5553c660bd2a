"""The guide's scenarios as workflows: which knobs each one has, and their defaults.

One WorkflowTemplate per scenario, built by the same code (workflows.template) from the same
knob model (workflows.params): its parameters are exactly that scenario's knobs, so the Argo
UI's submit form shows the knobs the scenario has (a saturation run has `stages` and length
distributions, no `rate`), and a resubmit from the UI repeats the run exactly (every knob is a
parameter the run recorded). `baseline` keeps its template name and parameters unchanged;
another scenario's template is `<name>-<scenario>` (`llm-baseline-saturation`).

Two kinds of scenario:
- **exact** (baseline, S1): one stage `rate` x `duration` of exact `input_tokens` /
  `output_tokens`, the knobs the workflow has always had;
- **staged** (saturation S2, production S4): `stages` (a stage spec, steps/stage_spec.py), the
  length distributions' `mean/std_dev/min/max` for input and output, and `drain_timeout`,
  which the load pod's time budget sums per stage.

A staged scenario's defaults are read from its packaged config (`steps/scenarios/<name>.yml`,
the load step's `--scenario` file): one home for what the scenario is. The load task gets the
scenario name and every knob as a flag, so the file only provides what no knob sets (the
distribution type, `ignore_eos`, ...).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import yaml

from steps.stage_spec import format_stages

__all__ = [
    "EXACT_KNOBS",
    "SCENARIOS",
    "SCENARIO_KNOBS",
    "STAGED_KNOBS",
    "Scenario",
    "ScenarioName",
    "packaged_defaults",
    "template_name",
]


class ScenarioName(StrEnum):
    baseline = "baseline"
    saturation = "saturation"
    production = "production"


#: One stage of exact lengths (baseline).
EXACT_KNOBS = ("rate", "duration", "input_tokens", "output_tokens")
_STATS = ("mean", "std_dev", "min", "max")
#: The length distributions' fields, `<side>_<stat>` (load flags `--input-mean`, ...).
DISTRIBUTION_KNOBS = tuple(f"{side}_{stat}" for side in ("input", "output") for stat in _STATS)
#: A stage spec, length distributions, and the per-stage drain the time budget sums.
STAGED_KNOBS = ("stages", *DISTRIBUTION_KNOBS, "drain_timeout")
#: Knobs only some scenarios have; every other knob is common to all.
SCENARIO_KNOBS = frozenset((*EXACT_KNOBS, *STAGED_KNOBS))


@dataclass(frozen=True)
class Scenario:
    """A scenario's name, the knobs only it has (besides the common ones) and what it is."""

    name: ScenarioName
    own_knobs: tuple[str, ...]
    description: str

    @property
    def staged(self) -> bool:
        """Stages from a stage spec (and a packaged config for defaults)."""
        return self.own_knobs == STAGED_KNOBS


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            ScenarioName.baseline,
            EXACT_KNOBS,
            "the guide's S1: 512/128 tokens exact, constant 1 QPS x 300 s",
        ),
        Scenario(
            ScenarioName.saturation,
            STAGED_KNOBS,
            "the guide's S2: 512±128 / 256±64 tokens, constant 5, 10, 20, 40 QPS x 180 s",
        ),
        Scenario(
            ScenarioName.production,
            STAGED_KNOBS,
            "the guide's S4: 1024±512 / 512±256 tokens, Poisson 15 QPS x 600 s",
        ),
    )
}


def template_name(base: str, scenario: ScenarioName) -> str:
    """The WorkflowTemplate of `scenario`: `base` for the baseline, `base-<scenario>` else."""
    return base if scenario is ScenarioName.baseline else f"{base}-{scenario.value}"


@functools.cache
def packaged_defaults(scenario: ScenarioName) -> dict[str, Any]:
    """A staged scenario's knob defaults, from its packaged config (the load step's file)."""
    path = resources.files("steps") / "scenarios" / f"{scenario.value}.yml"
    config = yaml.safe_load(path.read_text())
    load, data = config["load"], config["data"]
    defaults: dict[str, Any] = {
        "api_type": config["api"]["type"],
        "load_type": load["type"],
        "num_workers": load["num_workers"],
        "stages": format_stages([(float(s["rate"]), int(s["duration"])) for s in load["stages"]]),
    }
    for side in ("input", "output"):
        distribution = data[f"{side}_distribution"]
        defaults.update({f"{side}_{stat}": distribution[stat] for stat in _STATS})
    return defaults
