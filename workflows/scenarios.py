"""The guide's scenarios as workflows: which knobs each one has, and their defaults.

One WorkflowTemplate per scenario, built by the same code (workflows.template) from the same
knob model (workflows.params): its parameters are exactly that scenario's knobs, so the Argo
UI's submit form shows the knobs the scenario has (a saturation run has `stages` and length
distributions, no `rate`), and a resubmit from the UI repeats the run exactly (every knob is a
parameter the run recorded). `baseline` keeps its template name and parameters unchanged;
another scenario's template is `<name>-<scenario>` (`llm-baseline-saturation`).

The kinds of scenario:
- **exact** (baseline, S1): one stage `rate` x `duration` of exact `input_tokens` /
  `output_tokens`, the knobs the workflow has always had;
- **staged** (saturation S2, production S4): `stages` (a stage spec, steps/stage_spec.py), the
  length distributions' `mean/std_dev/min/max` for input and output, `drain_timeout`, which
  the load pod's time budget sums per stage, and the early stop (`early_stop`, its limit);
- **real data** (sharegpt S5): staged, plus `dataset` and `dataset_file`, what a dataset task
  fetches before the load (the distributions' min and max filter the conversations).
- **swept** (sweep S3): the length distributions and `drain_timeout` as a staged one, but its
  stages come from a probe task before the load (`python -m steps.load probe`, whose output
  parameter `stages` is the load's `--stages`): its knobs are the probe's, `sweep_<field>` for
  each field of inference-perf's `load.sweep` block.

- **config**: a user's own inference-perf config.yml, its text the `config` knob (a raw input
  artifact of the load pod); `stages`, `drain_timeout`, the early stop and the endpoint knobs
  default from it and win over it (`config_defaults`), the rest is the config's own.

A staged scenario's defaults are read from its packaged config (`steps/scenarios/<name>.yml`,
the load step's `--scenario` file): one home for what the scenario is. The load task gets the
scenario name and every knob as a flag, so the file only provides what no knob sets (the
distribution type, `ignore_eos`, ...).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import yaml

from steps.shared import Switch
from steps.stage_spec import format_stages

__all__ = [
    "CONFIG_DERIVED",
    "CONFIG_KNOBS",
    "DATASET_KNOBS",
    "DISTRIBUTION_KNOBS",
    "EXACT_KNOBS",
    "SCENARIOS",
    "SCENARIO_KNOBS",
    "STAGED_KNOBS",
    "SWEEP_KNOBS",
    "SWEPT_KNOBS",
    "Scenario",
    "ScenarioName",
    "config_defaults",
    "packaged_defaults",
    "template_name",
]


class ScenarioName(StrEnum):
    baseline = "baseline"
    saturation = "saturation"
    sweep = "sweep"
    production = "production"
    config = "config"
    sharegpt = "sharegpt"


#: One stage of exact lengths (baseline).
EXACT_KNOBS = ("rate", "duration", "input_tokens", "output_tokens")
_STATS = ("mean", "std_dev", "min", "max")
#: The length distributions' fields, `<side>_<stat>` (load flags `--input-mean`, ...).
DISTRIBUTION_KNOBS = tuple(f"{side}_{stat}" for side in ("input", "output") for stat in _STATS)
#: Skip the remaining stages once one saturates (`load.early_stop`), and its latency limit.
EARLY_STOP_KNOBS = ("early_stop", "early_stop_ttft_p99_ms")
#: A stage spec, length distributions, the per-stage drain the time budget sums, early stop.
STAGED_KNOBS = ("stages", *DISTRIBUTION_KNOBS, "drain_timeout", *EARLY_STOP_KNOBS)
#: The sweep probe's knobs: `sweep_<field>` = the probe's `--sweep-<field>` = `load.sweep.<field>`.
SWEEP_FIELDS = (
    "type", "num_requests", "timeout", "num_stages", "stage_duration", "saturation_percentile",
    "estimator",
)  # fmt: skip
SWEEP_KNOBS = tuple(f"sweep_{field}" for field in SWEEP_FIELDS)
#: The probe's knobs, then the length distributions, drain and early stop of its stages.
SWEPT_KNOBS = (*SWEEP_KNOBS, *DISTRIBUTION_KNOBS, "drain_timeout", *EARLY_STOP_KNOBS)
#: A user's own inference-perf config (its YAML text) and the name its runs are kept under.
CONFIG_KNOBS = ("config", "config_name", "stages", "drain_timeout", *EARLY_STOP_KNOBS)
#: Where a real-data scenario's conversations come from (the dataset step's --dataset and
#: --dataset-file): a local path, an s3:// URI or a Hugging Face dataset repo id, and the file
#: inside such a repo.
DATASET_KNOBS = ("dataset", "dataset_file")
#: The guide's S5 data: the ShareGPT V3 file on the Hugging Face Hub (as inference-perf fetches
#: it when data.path is unset).
DEFAULT_DATASET = "anon8231489123/ShareGPT_Vicuna_unfiltered"
DEFAULT_DATASET_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"
#: Knobs only some scenarios have; every other knob is common to all.
SCENARIO_KNOBS = frozenset(
    (*EXACT_KNOBS, *STAGED_KNOBS, *CONFIG_KNOBS, *DATASET_KNOBS, *SWEEP_KNOBS)
)
#: The load generator's knobs a user's config sets itself (the config scenario lacks them).
CONFIG_SETS = ("api_type", "load_type", "num_workers", "seed", "warmup_requests", "request_timeout")
#: Knobs the config scenario takes from its config unless given (the workflow needs them
#: outside the load step: readiness, tokenizer, the load pod's deadline).
CONFIG_DERIVED = (
    "base_url",
    "model_name",
    "tokenizer",
    "stages",
    "drain_timeout",
    *EARLY_STOP_KNOBS,
)


@dataclass(frozen=True)
class Scenario:
    """A scenario's name, the knobs only it has (besides the common ones) and what it is."""

    name: ScenarioName
    own_knobs: tuple[str, ...]
    description: str
    #: Common knobs this scenario does not have (its config sets them).
    without: tuple[str, ...] = ()

    @property
    def staged(self) -> bool:
        """Stages from a stage spec (and a packaged config for defaults): the spec is a knob,
        or the probe's output (`swept`)."""
        return set(STAGED_KNOBS) <= set(self.own_knobs) or self.swept

    @property
    def swept(self) -> bool:
        """Stages from a probe task before the load (its output parameter `stages`)."""
        return self.own_knobs == SWEPT_KNOBS

    @property
    def real_data(self) -> bool:
        """Prompts from a conversations file: a dataset task runs before the load."""
        return set(DATASET_KNOBS) <= set(self.own_knobs)

    def has(self, knob: str) -> bool:
        """Whether `knob` is one of this scenario's workflow parameters."""
        if knob in self.without:
            return False
        return knob not in SCENARIO_KNOBS or knob in self.own_knobs


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
            ScenarioName.sweep,
            SWEPT_KNOBS,
            "the guide's S3: S2's lengths; a probe finds the saturation rate, then 5 stages "
            "x 180 s up to it",
        ),
        Scenario(
            ScenarioName.production,
            STAGED_KNOBS,
            "the guide's S4: 1024±512 / 512±256 tokens, Poisson 15 QPS x 600 s",
        ),
        Scenario(
            ScenarioName.config,
            CONFIG_KNOBS,
            "your own inference-perf config.yml (--config FILE); its stages as a knob",
            without=CONFIG_SETS,
        ),
        Scenario(
            ScenarioName.sharegpt,
            (*STAGED_KNOBS, *DATASET_KNOBS),
            "the guide's S5: ShareGPT conversations (lengths filter them), constant 10 QPS x 300 s",
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
    }
    if SCENARIOS[scenario].swept:
        defaults.update({f"sweep_{k}": v for k, v in load["sweep"].items() if k in SWEEP_FIELDS})
    else:
        stages = [(float(s["rate"]), int(s["duration"])) for s in load["stages"]]
        defaults["stages"] = format_stages(stages)
    for side in ("input", "output"):
        distribution = data[f"{side}_distribution"]
        defaults.update({f"{side}_{stat}": distribution[stat] for stat in _STATS})
    if SCENARIOS[scenario].real_data:
        defaults.update(dataset=DEFAULT_DATASET, dataset_file=DEFAULT_DATASET_FILE)
    return defaults


def config_defaults(text: str) -> dict[str, Any]:
    """The knobs a user's config gives the workflow (CONFIG_DERIVED), read from its YAML.

    Only what the workflow needs outside the load step; the load step validates the whole
    config (it is the one that reads it), so here a missing or odd key is simply not a default
    and the knob's own check names it. A stage of fractional seconds, a closed-loop or a sweep
    config has no stage spec: ValueError naming the key.
    """
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError("not valid YAML") from None
    if not isinstance(config, dict):
        raise ValueError("expected an inference-perf config (a mapping at the top level)")
    server, load = config.get("server") or {}, config.get("load") or {}
    tokenizer = (config.get("tokenizer") or {}).get("pretrained_model_name_or_path")
    defaults = {
        "base_url": server.get("base_url"),
        "model_name": server.get("model_name"),
        "tokenizer": tokenizer or server.get("model_name"),
        "drain_timeout": _whole_seconds(load.get("drain_timeout"), "load.drain_timeout"),
        "stages": _stage_spec(load),
        **_early_stop(load.get("early_stop")),
    }
    return {k: v for k, v in defaults.items() if v is not None}


def _early_stop(block: Any) -> dict[str, Any]:
    """The config's `load.early_stop` as the two knobs (its block present = on)."""
    if block is None:
        return {"early_stop": Switch.off.value}
    limit = block.get("ttft_p99_ms") if isinstance(block, dict) else None
    return {"early_stop": Switch.on.value, "early_stop_ttft_p99_ms": limit}


def _whole_seconds(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: {value!r} is not a number of seconds")
    return math.ceil(value)  # a deadline that rounds up never cuts the drain short


def _stage_spec(load: dict[str, Any]) -> str | None:
    if load.get("type") == "concurrent" or load.get("sweep") is not None:
        raise ValueError(
            "load: a closed-loop (concurrent) or sweep config has no rate stages; the config "
            "scenario runs rate stages (RATExSECONDS)"
        )
    stages = load.get("stages")
    if not isinstance(stages, list):
        return None
    pairs = []
    for i, stage in enumerate(stages):
        rate, duration = (stage or {}).get("rate"), (stage or {}).get("duration")
        if not isinstance(rate, int | float) or not isinstance(duration, int | float):
            raise ValueError(f"load.stages[{i}]: needs a rate and a duration")
        if duration != int(duration):
            raise ValueError(
                f"load.stages[{i}].duration {duration}: the workflow runs whole seconds"
            )
        pairs.append((float(rate), int(duration)))
    return format_stages(pairs)
