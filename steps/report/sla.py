"""SLA thresholds (from a YAML file and/or flags) and the verdict per threshold. Pure functions.

A threshold is an upper bound (`value <= limit`), or a lower bound (`value >= limit`) for a
metric where higher is better (goodput, SLO attainment). Every threshold reads one
key metric of the summary's `overall` group (`steps.summary_model.KEY_METRICS`), so the SLA file,
the flags, the Argo parameters and the output files all use the same names (`ttft_p99_ms` in the
file = `--sla-ttft-p99-ms` flag).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from steps.errors import UsageError
from steps.records import SATURATION_DELAY_MS
from steps.stage_saturation import ERROR_RATE
from steps.summary_model import KEY_METRICS, SLA_METRIC_NAMES, Group

__all__ = [
    "DEFAULT_ERROR_RATE",
    "DEFAULT_THRESHOLDS",
    "EMPTY_MEANS_OFF",
    "RATE_BOUNDS",
    "SlaVerdict",
    "evaluate_sla",
    "evaluate_stage_sla",
    "merge_thresholds",
    "parse_flag_value",
    "parse_sla_yaml",
]

#: A nightly run where more than 1 % of the requests failed is not green, even with no SLA given.
DEFAULT_ERROR_RATE = ERROR_RATE  # the error rate a stage saturates above (one number)

#: A load generator whose sends lag their schedule by more than 10 ms at p99 measured itself,
#: not the server (DESIGN.md "saturated" flag), so this bound is on unless switched off.
DEFAULT_THRESHOLDS: dict[str, float | None] = dict.fromkeys(SLA_METRIC_NAMES) | {
    "error_rate": DEFAULT_ERROR_RATE,
    "schedule_delay_p99_ms": SATURATION_DELAY_MS,
}

#: Thresholds whose flag switches the bound off when given as "" (elsewhere "" = not given): the
#: workflow parameter carries the default limit, so a user who clears it means "no limit".
EMPTY_MEANS_OFF = frozenset({"error_rate"})

#: Flag words that switch a threshold off (an empty string means "not given", as Argo sends it).
OFF_WORDS = frozenset({"off", "none", "null"})


@dataclass(frozen=True)
class SlaVerdict:
    """One threshold's outcome; `value` is None when the run has no data for it (counts as fail).

    `bound` is "<=" for an upper bound, ">=" for a lower one (KEY_METRICS' `better`).
    """

    name: str
    value: float | None
    limit: float
    passed: bool
    bound: str = "<="


def _as_limit(raw: object, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise UsageError(f"{where}: expected a number or null, got {raw!r}")
    limit = float(raw)
    if limit < 0 or limit != limit:
        raise UsageError(f"{where}: expected a non-negative number, got {raw!r}")
    return limit


def parse_sla_yaml(text: str, source: str) -> dict[str, float | None]:
    """Thresholds given by an SLA file: a flat mapping `name: number|null` (null = switched off)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping of threshold names to numbers")
    known = ", ".join(SLA_METRIC_NAMES)
    thresholds: dict[str, float | None] = {}
    for key, raw in data.items():
        if key not in SLA_METRIC_NAMES:
            raise UsageError(f"{source}: unknown SLA key {key!r} (known: {known})")
        thresholds[key] = _as_limit(raw, f"{source}: {key}")
    return thresholds


def parse_flag_value(name: str, raw: str) -> float | None:
    """A `--sla-*` flag value: a number, or an OFF word; the caller drops "" (unset) first."""
    if raw.strip().lower() in OFF_WORDS:
        return None
    flag = "--sla-" + name.replace("_", "-")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{flag}: expected a number, '' or 'off', got {raw!r}") from None
    return _as_limit(value, flag)


def merge_thresholds(
    from_file: Mapping[str, float | None], from_flags: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Defaults, overridden by the file, overridden by flags (flags win: they are per-run)."""
    return {**DEFAULT_THRESHOLDS, **from_file, **from_flags}


#: SLA thresholds that bound an absolute rate (goodput): met by the whole run, meaningless for
#: one stage run below that rate.
RATE_BOUNDS = frozenset(n for n in SLA_METRIC_NAMES if KEY_METRICS[n].unit == "1/s")


def evaluate_stage_sla(thresholds: Mapping[str, float | None], stage: Group) -> list[SlaVerdict]:
    """One stage's verdicts: every threshold but the rate bounds (RATE_BOUNDS)."""
    return evaluate_sla({k: v for k, v in thresholds.items() if k not in RATE_BOUNDS}, stage)


def evaluate_sla(thresholds: Mapping[str, float | None], overall: Group) -> list[SlaVerdict]:
    """One verdict per set threshold, in `SLA_METRIC_NAMES` order; missing data fails it."""
    verdicts = []
    for name in SLA_METRIC_NAMES:
        limit = thresholds.get(name)
        if limit is None:
            continue
        metric = KEY_METRICS[name]
        value = metric.read(overall)
        if metric.better == "higher":
            passed, bound = value is not None and value >= limit, ">="
        else:
            passed, bound = value is not None and value <= limit, "<="
        verdicts.append(SlaVerdict(name, value, limit, passed, bound))
    return verdicts
