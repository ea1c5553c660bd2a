"""The AI on EKS benchmark chart's values layout -> our knobs, so chart users switch unchanged.

`-f values.yaml` files merge in order (maps deep-merged, lists replaced, as Helm does), then each
`--set a.b[0].c=v` applies. Only what the user gave is mapped; everything else keeps our defaults.
Three kinds of keys (chart v0.1.0 plus the 0.2.x additions):

- mapped to a knob or an install option (`benchmark.target.baseUrl` -> `base_url`);
- chart-only keys with no meaning here (images, Job backoff, pip packages): accepted and listed
  as ignored, so a copied values file works;
- anything else: an error naming the key. Values this workflow cannot honour (a scenario it
  has no template for, variable lengths or several stages in the baseline, a sweep outside the
  sweep scenario, streaming off, affinity off) are errors too.

`benchmark.scenario` picks the scenario (the `--scenario` flag wins over it) and only that
scenario's block under `benchmark.scenarios` is mapped (the others are listed as ignored, as
the chart renders only the selected one): the baseline's to its exact-length knobs, a staged
scenario's (saturation, production) to `stages` and the length distributions, the sweep's to
its probe's `sweep_*` knobs and the length distributions (its stages are the probe's). Chart 0.2.x's
`benchmark.config` (a whole inference-perf config) selects the config scenario, as the chart
uses it instead of the generated config.

One deliberate difference: `--set ...stages[0].duration=600` changes only the duration of stage 0;
Helm would replace the whole list and drop its rate (a chart bug the guide's example hits).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from steps.cli import read_input_text
from steps.errors import UsageError
from steps.stage_spec import format_stages
from workflows.scenarios import SCENARIOS, ScenarioName

__all__ = ["ChartMapping", "apply_set", "load_values", "map_values"]

_SEGMENT_RE = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")
#: Largest `[i]` a `--set` path may use. The chart's lists hold a handful of entries (one stage,
#: one namespace, a few tolerations); `apply_set` pads a list up to the index, so an unbounded
#: `stages[300000000]` would allocate gigabytes before any validation could refuse it.
MAX_SET_INDEX = 99


@dataclass
class ChartMapping:
    """Knob values, install-option values and the chart keys that had no effect."""

    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _scalar(text: str) -> Any:
    """Type a `--set` value as Helm's strvals does: bools, null, integers, else the string."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for segment in path.split("."):
        match = _SEGMENT_RE.fullmatch(segment)
        if match is None:
            raise UsageError(f"--set: cannot parse key path {path!r}")
        parts.append(match.group(1))
        for index in re.findall(r"\[(\d+)\]", match.group(2)):
            if int(index) > MAX_SET_INDEX:
                raise UsageError(
                    f"--set {path}: list index [{index}] is out of range (at most {MAX_SET_INDEX})"
                )
            parts.append(int(index))
    return parts


def apply_set(values: dict[str, Any], assignment: str) -> None:
    """Apply one `--set a.b[0].c=v` to a values tree in place."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise UsageError(f"--set: expected key=value, got {assignment!r}")
    parts = _path(key)
    node: Any = values
    for part, nxt in itertools.pairwise(parts):
        child_default: Any = [] if isinstance(nxt, int) else {}
        if isinstance(part, int):
            if not isinstance(node, list):
                raise UsageError(f"--set {key}: [{part}] indexes something that is not a list")
            while len(node) <= part:
                node.append({} if not isinstance(nxt, int) else [])
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise UsageError(f"--set {key}: '{part}' is under something that is not a map")
            node = node.setdefault(part, child_default)
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list):
            raise UsageError(f"--set {key}: [{last}] indexes something that is not a list")
        while len(node) <= last:
            node.append(None)
        node[last] = _scalar(raw)
    else:
        if not isinstance(node, dict):
            raise UsageError(f"--set {key}: '{last}' is under something that is not a map")
        node[last] = _scalar(raw)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def load_values(files: Sequence[Path], sets: Sequence[str]) -> dict[str, Any]:
    """Merge values files in order, then apply `--set` assignments."""
    values: dict[str, Any] = {}
    for path in files:
        text = read_input_text(path, "-f")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UsageError(f"-f {path}: not valid YAML") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise UsageError(f"-f {path}: expected a mapping at the top level")
        _merge(values, data)
    for assignment in sets:
        apply_set(values, assignment)
    return values


# ---------------------------------------------------------------------------------------------
# Key table. A handler gets (value, key path, mapping) and records what the value means.

Handler = Callable[[Any, str, ChartMapping], None]
Spec = dict[str, Any]  # key -> Handler | nested Spec; "*" matches any key


def _to(knob: str) -> Handler:
    def handle(value: Any, key: str, out: ChartMapping) -> None:
        out.params[knob] = value

    return handle


def _to_option(option: str) -> Handler:
    def handle(value: Any, key: str, out: ChartMapping) -> None:
        out.options[option] = value

    return handle


def _ignored(value: Any, key: str, out: ChartMapping) -> None:
    out.ignored.append(key)


def _selects(value: Any, key: str, out: ChartMapping) -> None:
    """`benchmark.scenario`: read before the walk, it selects the mapped block (`_spec`)."""


def _must_be(expected: Any, why: str) -> Handler:
    def handle(value: Any, key: str, out: ChartMapping) -> None:
        if value != expected:
            raise UsageError(f"values: {key}={value!r} is not supported: {why}")

    return handle


def _not_supported(why: str) -> Handler:
    def handle(value: Any, key: str, out: ChartMapping) -> None:
        raise UsageError(f"values: {key} is not supported: {why}")

    return handle


def _target_labels(value: Any, key: str, out: ChartMapping) -> None:
    if not isinstance(value, dict) or not value:
        raise UsageError(f"values: {key} must be a non-empty map of pod labels")
    out.params["target_labels"] = ",".join(f"{k}={v}" for k, v in value.items())


def _namespaces(value: Any, key: str, out: ChartMapping) -> None:
    if not isinstance(value, list) or len(value) != 1:
        raise UsageError(f"values: {key} must list exactly one namespace (the model's)")
    out.params["target_namespace"] = value[0]


def _fixed_length(knob: str) -> Handler:
    """A chart distribution {mean, stdDev, min, max} must be one exact length here."""

    def handle(value: Any, key: str, out: ChartMapping) -> None:
        if not isinstance(value, dict):
            raise UsageError(f"values: {key} must be a map of mean, stdDev, min, max")
        for name in value:
            if name not in ("mean", "stdDev", "min", "max"):
                raise UsageError(f"values: unknown key '{key}.{name}'")
        if value.get("stdDev", 0) != 0:
            raise UsageError(
                f"values: {key}.stdDev={value['stdDev']!r}: the baseline uses exact lengths "
                "(stdDev 0, min = max = mean)"
            )
        lengths = {v for k, v in value.items() if k != "stdDev"}
        if len(lengths) > 1:
            raise UsageError(f"values: {key}: mean, min and max must be equal, got {value}")
        if lengths:
            out.params[knob] = lengths.pop()

    return handle


def _distribution(side: str) -> Handler:
    """A chart distribution {mean, stdDev, min, max} -> the `<side>_*` knobs."""
    names = {"mean": "mean", "stdDev": "std_dev", "min": "min", "max": "max"}

    def handle(value: Any, key: str, out: ChartMapping) -> None:
        if not isinstance(value, dict):
            raise UsageError(f"values: {key} must be a map of mean, stdDev, min, max")
        for name, item in value.items():
            if name not in names:
                raise UsageError(f"values: unknown key '{key}.{name}'")
            out.params[f"{side}_{names[name]}"] = item

    return handle


def _stage_list(value: Any, key: str, out: ChartMapping) -> None:
    """The chart's stages [{rate, duration}] -> the `stages` knob (a stage spec)."""
    if not isinstance(value, list) or not value:
        raise UsageError(f"values: {key} must be a list of stages {{rate, duration}}")
    stages = []
    for i, stage in enumerate(value):
        if not isinstance(stage, dict) or set(stage) != {"rate", "duration"}:
            raise UsageError(f"values: {key}[{i}] must be {{rate, duration}}, got {stage!r}")
        rate, duration = stage["rate"], stage["duration"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in stage.values()):
            raise UsageError(f"values: {key}[{i}]: rate and duration must be numbers")
        if duration != int(duration):
            raise UsageError(f"values: {key}[{i}].duration={duration}: whole seconds only")
        stages.append((float(rate), int(duration)))
    out.params["stages"] = format_stages(stages)


def _config(value: Any, key: str, out: ChartMapping) -> None:
    """Chart 0.2.x's whole inference-perf config -> the config scenario."""
    if value is None:  # the chart's default: generate from the scenario
        return
    if not isinstance(value, dict):
        raise UsageError(f"values: {key} must be an inference-perf config (a map)")
    out.params["scenario"] = "config"
    out.params["config"] = yaml.safe_dump(value, sort_keys=False)


def _stages(value: Any, key: str, out: ChartMapping) -> None:
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise UsageError(f"values: {key} must hold exactly one stage {{rate, duration}}")
    for name, item in value[0].items():
        if name == "rate":
            out.params["rate"] = item
        elif name == "duration":
            out.params["duration"] = item
        else:
            raise UsageError(f"values: unknown key '{key}[0].{name}'")


#: The chart's sweep keys (camelCase) -> the sweep scenario's knobs.
_SWEEP_KEYS = {
    "type": "sweep_type",
    "numRequests": "sweep_num_requests",
    "timeout": "sweep_timeout",
    "numStages": "sweep_num_stages",
    "stageDuration": "sweep_stage_duration",
    "saturationPercentile": "sweep_saturation_percentile",
}
_DISTRIBUTION = {"mean": _ignored, "stdDev": _ignored, "min": _ignored, "max": _ignored}
_OTHER_SCENARIO: Spec = {
    "description": _ignored,
    "data": {"input": _DISTRIBUTION, "output": _DISTRIBUTION},
    "load": {
        "type": _ignored,
        "numWorkers": _ignored,
        "stages": _ignored,
        "sweep": {k: _ignored for k in _SWEEP_KEYS},
    },
}


def _scenario_block(input_: Handler, output: Handler, stages: Handler) -> Spec:
    """The selected scenario's block: its lengths and stages as the scenario takes them."""
    return {
        "description": _ignored,
        "data": {"input": input_, "output": output},
        "load": {
            "type": _to("load_type"),
            "numWorkers": _to("num_workers"),
            "stages": stages,
            "sweep": _not_supported("this scenario runs fixed stages, not a sweep"),
        },
    }


_STAGED = _scenario_block(_distribution("input"), _distribution("output"), _stage_list)


def _no_stages(value: Any, key: str, out: ChartMapping) -> None:
    """The sweep scenario's `stages`: empty, as the chart's (the probe writes them)."""
    if value:
        raise UsageError(f"values: {key}: the sweep's stages come from its probe; leave it empty")


_SWEPT: Spec = {
    "description": _ignored,
    "data": {"input": _distribution("input"), "output": _distribution("output")},
    "load": {
        "type": _to("load_type"),
        "numWorkers": _to("num_workers"),
        "stages": _no_stages,
        "sweep": {chart: _to(knob) for chart, knob in _SWEEP_KEYS.items()},
    },
}
_BASELINE = _scenario_block(_fixed_length("input_tokens"), _fixed_length("output_tokens"), _stages)
_SPEC: Spec = {
    "benchmark": {
        "enabled": _ignored,
        "namespace": _to_option("namespace"),
        "image": {
            "repository": _ignored,
            "tag": _ignored,
            "pullPolicy": _to_option("image_pull_policy"),
        },
        "serviceAccount": {
            "create": _ignored,
            "name": _to_option("service_account"),
            "annotations": _ignored,
        },
        "scenario": _selects,
        "job": {
            "backoffLimit": _ignored,
            "ttlSecondsAfterFinished": _to_option("ttl_after_completion_s"),
        },
        "target": {
            "serverType": _ignored,
            "modelName": _to("model_name"),
            "baseUrl": _to("base_url"),
            "tokenizerPath": _to("tokenizer"),
            "ignoreEos": _must_be(True, "exact output lengths need ignore_eos"),
        },
        "api": {
            "type": _to("api_type"),
            "streaming": _must_be(True, "TTFT and ITL need streaming"),
        },
        "storage": {"s3": {"bucketName": _to("bucket"), "pathPrefix": _to("path")}},
        "dependencies": {"packages": _ignored},
        "resources": _ignored,
        "nodeSelector": _ignored,
        "tolerations": _ignored,
        "affinity": {
            "enabled": _must_be(True, "the load pod always runs in the model's zone"),
            "targetLabels": _target_labels,
            "namespaces": _namespaces,
        },
        "config": _config,
        "scenarios": {"*": _OTHER_SCENARIO},  # the selected one: `_spec`
    }
}


def _walk(node: Any, spec: Spec | Handler, key: str, out: ChartMapping) -> None:
    if callable(spec):
        spec(node, key, out)
        return
    if not isinstance(node, dict):
        raise UsageError(f"values: {key} must be a map, got {node!r}")
    for name, value in node.items():
        child = spec.get(name, spec.get("*"))
        path = f"{key}.{name}" if key else str(name)
        if child is None:
            allowed = ", ".join(k for k in spec if k != "*")
            raise UsageError(f"values: unknown key '{path}' (known here: {allowed})")
        _walk(value, child, path, out)


def _selected(values: dict[str, Any], flag: str | None) -> ScenarioName:
    """The scenario whose block maps: the `--scenario` flag, else `benchmark.scenario`."""
    benchmark = values.get("benchmark")
    chosen = benchmark.get("scenario", "baseline") if isinstance(benchmark, dict) else "baseline"
    name = flag or chosen
    try:
        scenario = ScenarioName(name)
    except ValueError:
        names = ", ".join(s.value for s in ScenarioName if s is not ScenarioName.config)
        raise UsageError(
            f"values: benchmark.scenario={name!r} is not supported: this workflow has the "
            f"scenarios {names}"
        ) from None
    return scenario


def _spec(scenario: ScenarioName) -> Spec:
    """_SPEC with the selected scenario's block mapped to its knobs (the config scenario has
    none: its config is the whole load)."""
    blocks: Spec = {"*": _OTHER_SCENARIO}
    if scenario is ScenarioName.baseline:
        blocks[scenario.value] = _BASELINE
    elif SCENARIOS[scenario].swept:
        blocks[scenario.value] = _SWEPT
    elif scenario is not ScenarioName.config:
        blocks[scenario.value] = _STAGED
    return {"benchmark": {**_SPEC["benchmark"], "scenarios": blocks}}


def map_values(values: dict[str, Any], scenario: str | None = None) -> ChartMapping:
    """Translate a merged values tree into knob and option values; `scenario` is the
    `--scenario` flag when given (it wins over `benchmark.scenario`)."""
    out = ChartMapping()
    selected = _selected(values, scenario)
    _walk(values, _spec(selected), "", out)
    if out.params.get("scenario") == ScenarioName.config.value or selected is ScenarioName.config:
        # benchmark.config replaces the generated config: only the endpoint and storage apply
        out.params = {k: v for k, v in out.params.items() if k in _CONFIG_SCENARIO_KEYS}
    elif scenario is None and selected is not ScenarioName.baseline:
        out.params["scenario"] = selected.value
    return out


#: What still applies with benchmark.config: the endpoint, tokenizer and storage knobs.
_CONFIG_SCENARIO_KEYS = frozenset(
    {
        "scenario",
        "config",
        "base_url",
        "model_name",
        "tokenizer",
        "bucket",
        "path",
        "target_labels",
        "target_namespace",
    }
)
