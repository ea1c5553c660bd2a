"""Capacity of a multi-stage run: the guide's reading of its saturation scenario, automated.

The AI on EKS guide reads a multi-stage run (S2 saturation, S3 sweep) stage by stage: latency
percentiles against the rate, "saturation is where percentiles diverge or errors jump; the knee
(hockey-stick) is practical capacity; target 20-30 % below it". This module makes that reading
a computation over the summary's stage groups, with every rule stated here once:

- a stage shows **saturation** by the rule the load step's early stop applies too
  (`steps/stage_saturation.py`: errors above 1 %, fewer than 95 % of its sends out, TTFT p99
  twice the lowest stage's or more, no successful request);
- the **knee** is the highest rate before the first saturated stage (the practical capacity);
- the **highest rate within the SLA** is the highest rate up to which every stage meets every
  SLA threshold (a pass above a failed stage is noise, not capacity). Goodput, a bound on an
  absolute rate, says nothing about a lower stage, so it is left out here;
- the **recommended operating rate** is the lower of the two, less the headroom (default 25 %,
  the middle of the guide's 20-30 %).

A stage whose load generator fell behind its own schedule measured the client, not the server:
the reading stops below it and says so. Open-loop sends keep their rate when the server queues,
so the served rate is not a criterion (a stage's drain would make short stages look saturated);
the queue shows in TTFT instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from steps.report.sla import evaluate_stage_sla
from steps.stage_saturation import StageReading, saturation_signs
from steps.summary_model import StageGroup

__all__ = [
    "CAPACITY_QUANTILES",
    "DEFAULT_HEADROOM",
    "Capacity",
    "StagePoint",
    "read_capacity",
]

#: The percentiles the guide reads a capacity curve by (report table and capacity.png).
CAPACITY_QUANTILES = ("p50", "p95", "p99")
#: The guide: "target 20-30 % below" the knee.
DEFAULT_HEADROOM = 0.25


@dataclass(frozen=True)
class StagePoint:
    """One stage as a point of the capacity curve, with what the reading found in it."""

    stage: int
    requested_rate: float
    group: StageGroup
    saturation: tuple[str, ...]  # why the stage counts as saturated; empty = it held
    sla_breaches: tuple[str, ...]  # thresholds this stage broke; empty = within the SLA
    client_limited: bool  # the load generator fell behind: the numbers measure the client


@dataclass(frozen=True)
class Capacity:
    """The reading of a multi-stage run; a rate is None where the run cannot tell it."""

    points: tuple[StagePoint, ...]  # by requested rate, lowest first
    knee_rate: float | None
    saturated_rate: float | None  # the first stage that showed saturation
    max_rate_within_sla: float | None
    recommended_rate: float | None
    headroom: float
    notes: tuple[str, ...]


def _saturation(stage: StageGroup, rate: float, reference_ttft_p99: float | None) -> list[str]:
    """The saturation signs in one stage (steps/stage_saturation.py), one phrase each."""
    reading = StageReading(rate, stage.achieved_rate, stage.error_rate, stage.latency_ms.ttft.p99)
    return saturation_signs(reading, reference_ttft_p99)


def _sla_breaches(stage: StageGroup, thresholds: Mapping[str, float | None]) -> list[str]:
    """The stage's SLA failures (rate bounds left out), as `name value > limit` phrases."""
    return [
        f"{v.name} {'no data' if v.value is None else f'{v.value:g}'} vs {v.bound} {v.limit:g}"
        for v in evaluate_stage_sla(thresholds, stage)
        if not v.passed
    ]


def _point(
    stage: StageGroup, rate: float, reference: float | None, thresholds: Mapping[str, float | None]
) -> StagePoint:
    return StagePoint(
        stage=stage.stage,
        requested_rate=rate,
        group=stage,
        saturation=tuple(_saturation(stage, rate, reference)),
        sla_breaches=tuple(_sla_breaches(stage, thresholds)),
        client_limited=stage.load_generator_saturated,
    )


def _knee(points: Sequence[StagePoint]) -> tuple[float | None, float | None, list[str]]:
    """(knee rate, first saturated rate, notes), walking up from the lowest stage."""
    knee = None
    for point in points:
        if point.client_limited:
            note = (
                f"stage {point.stage} ({point.requested_rate:g}/s): the load generator fell "
                "behind its schedule, so it and the stages above measure the client; "
                "give the load pod more workers or CPU"
            )
            return knee, None, [note]
        if point.saturation:
            if knee is None:
                rate = point.requested_rate
                note = f"saturated at the lowest stage ({rate:g}/s): add lower stages"
                return None, point.requested_rate, [note]
            return knee, point.requested_rate, []
        knee = point.requested_rate
    top = points[-1].requested_rate
    note = f"no stage saturated: capacity is above {top:g}/s; add higher stages to find the knee"
    return None, None, [note]


def _max_within_sla(points: Sequence[StagePoint]) -> float | None:
    """The highest rate up to which every stage met the SLA (and measured the server)."""
    best = None
    for point in points:
        if point.sla_breaches or point.client_limited:
            break
        best = point.requested_rate
    return best


def read_capacity(
    stages: Sequence[StageGroup],
    thresholds: Mapping[str, float | None],
    headroom: float = DEFAULT_HEADROOM,
    stopped_early: str | None = None,
) -> Capacity | None:
    """The capacity reading, or None for a run that is not a ladder of at least two rates;
    `stopped_early` (RunSection.stopped_early) is noted: the stages above were never run."""
    ladder = sorted((s.rate, s.stage, s) for s in stages if s.rate is not None)
    if len(ladder) < len(stages) or len({rate for rate, _, _ in ladder}) < 2:
        return None
    reference = ladder[0][2].latency_ms.ttft.p99  # the lowest stage's TTFT p99
    points = [_point(s, rate, reference, thresholds) for rate, _, s in ladder]
    knee, saturated, notes = _knee(points)
    within = _max_within_sla(points)
    known = [rate for rate in (knee, within) if rate is not None]
    recommended = min(known) * (1.0 - headroom) if known else None
    if knee is None and within is not None:
        notes.append("the recommended rate is from the SLA alone (no knee in this run)")
    if stopped_early:
        notes.append(f"The load {stopped_early}.")
    return Capacity(
        points=tuple(points),
        knee_rate=knee,
        saturated_rate=saturated,
        max_rate_within_sla=within,
        recommended_rate=recommended,
        headroom=headroom,
        notes=tuple(notes),
    )
