"""The capacity reading of a multi-stage run (steps.report.capacity), from typed stage groups."""

from __future__ import annotations

import pytest

from steps.report.capacity import DEFAULT_HEADROOM, read_capacity
from steps.report.sla import DEFAULT_THRESHOLDS
from tests.helpers.summaries import stage, stats

#: The report's default thresholds (error rate 1 %, schedule delay p99 10 ms) and a TTFT p99 SLA.
SLA = DEFAULT_THRESHOLDS | {"ttft_p99_ms": 500.0}


def test_single_rate_or_unknown_rate_has_no_capacity_reading() -> None:
    assert read_capacity([stage(0, 5, ttft=stats(50, 80))], SLA) is None
    same_rate = [stage(0, 5, ttft=stats(50, 80)), stage(1, 5, ttft=stats(50, 80))]
    assert read_capacity(same_rate, SLA) is None


def test_knee_is_the_rate_before_ttft_tail_doubles() -> None:
    stages = [
        stage(0, 5, ttft=stats(50, 100)),
        stage(1, 10, ttft=stats(55, 150)),
        stage(2, 20, ttft=stats(60, 199)),
        stage(3, 40, ttft=stats(400, 2500)),
    ]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert (capacity.knee_rate, capacity.saturated_rate) == (20, 40)
    assert capacity.points[3].saturation == ("TTFT p99 2500 ms, 25.0x the lowest stage's",)
    # Stage 40 also breaks the 500 ms TTFT p99 SLA; up to 20/s every stage met it.
    assert capacity.max_rate_within_sla == 20
    assert capacity.recommended_rate == pytest.approx(20 * (1 - DEFAULT_HEADROOM))


def test_stages_are_read_by_rate_not_by_index() -> None:
    stages = [stage(0, 40, ttft=stats(400, 2500)), stage(1, 5, ttft=stats(50, 100))]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert [p.requested_rate for p in capacity.points] == [5, 40]
    assert capacity.knee_rate == 5


def test_errors_or_unsent_requests_are_saturation() -> None:
    stages = [
        stage(0, 5, ttft=stats(50, 100)),
        stage(1, 10, ttft=stats(50, 110), error_rate=0.03),
        stage(2, 20, ttft=stats(50, 110), sent=15.0),
    ]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert capacity.points[1].saturation == ("errors 3.0% > 1%",)
    assert capacity.points[2].saturation == ("sent 15.00/s of 20/s",)
    assert (capacity.knee_rate, capacity.saturated_rate) == (5, 10)
    # error_rate 0.03 breaks the default 1 % bound too.
    assert capacity.max_rate_within_sla == 5


def test_sla_limit_below_the_knee_sets_the_recommendation() -> None:
    stages = [
        stage(0, 5, ttft=stats(50, 300)),
        stage(1, 10, ttft=stats(60, 550)),
        stage(2, 20, ttft=stats(80, 590)),
    ]
    capacity = read_capacity(stages, SLA, headroom=0.2)

    assert capacity is not None
    assert capacity.knee_rate is None  # nothing saturated: TTFT p99 < 2x 300 ms
    assert capacity.max_rate_within_sla == 5
    assert capacity.points[1].sla_breaches == ("ttft_p99_ms 550 vs <= 500",)
    assert capacity.recommended_rate == pytest.approx(4.0)
    assert any("no stage saturated: capacity is above 20/s" in n for n in capacity.notes)


def test_a_pass_above_a_failed_stage_is_not_capacity() -> None:
    stages = [
        stage(0, 5, ttft=stats(50, 100)),
        stage(1, 10, ttft=stats(60, 510)),
        stage(2, 20, ttft=stats(60, 190)),
    ]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert capacity.max_rate_within_sla == 5


def test_goodput_bound_is_not_applied_per_stage() -> None:
    stages = [stage(0, 1, ttft=stats(50, 100)), stage(1, 2, ttft=stats(50, 100))]
    capacity = read_capacity(stages, SLA | {"goodput_rps": 10.0})

    assert capacity is not None
    assert capacity.max_rate_within_sla == 2


def test_saturated_at_the_lowest_stage_has_no_knee() -> None:
    stages = [stage(0, 5, ttft=stats(50, 100), error_rate=0.5), stage(1, 10, ttft=stats(50, 100))]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert (capacity.knee_rate, capacity.saturated_rate) == (None, 5)
    assert capacity.max_rate_within_sla is None
    assert capacity.recommended_rate is None
    assert capacity.notes == ("saturated at the lowest stage (5/s): add lower stages",)


def test_client_limited_stage_stops_the_reading() -> None:
    stages = [
        stage(0, 5, ttft=stats(50, 100)),
        stage(1, 10, ttft=stats(50, 100), client_limited=True),
        stage(2, 20, ttft=stats(900, 5000)),
    ]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert (capacity.knee_rate, capacity.saturated_rate) == (5, None)
    assert capacity.max_rate_within_sla == 5
    assert "measure the client" in capacity.notes[0]


def test_a_stage_without_successful_requests_is_saturated() -> None:
    stages = [stage(0, 5, ttft=stats(50, 100)), stage(1, 10, error_rate=1.0)]
    capacity = read_capacity(stages, SLA)

    assert capacity is not None
    assert "no successful request" in capacity.points[1].saturation
    assert capacity.knee_rate == 5
