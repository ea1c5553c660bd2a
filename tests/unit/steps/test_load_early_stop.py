"""The load step's early stop: a finished stage read from its workers' tallies by the shared
saturation rule, and what it records; refusals where it cannot decide alone."""

from __future__ import annotations

import pytest

from steps.errors import UsageError
from steps.load.config import EarlyStop
from steps.load.early_stop import EarlyStopper, check_early_stop
from steps.load.schedule import StagePlan
from steps.load.worker import StageTally


def _plan(stage: int, rate: float, n: int) -> StagePlan:
    return StagePlan(stage, rate, n / rate, tuple(range(n)))


def _tally(requests: int, errors: int, ttfts: list[float]) -> StageTally:
    return StageTally(requests=requests, sent=requests, errors=errors, ttfts_ms=ttfts)


def test_stopper_holds_below_and_stops_where_the_tail_doubles() -> None:
    stopper = EarlyStopper(EarlyStop())
    low = [_tally(10, 0, [50.0] * 10), _tally(10, 0, [60.0] * 10)]  # p99 = 60 over both workers
    assert not stopper.saturated(_plan(0, 5, 20), low)
    assert not stopper.saturated(_plan(1, 10, 40), [_tally(40, 0, [119.0] * 40)])
    assert stopper.saturated(
        _plan(2, 20, 80), [_tally(40, 0, [100.0] * 39 + [500.0]), _tally(40, 0, [120.0] * 40)]
    )
    assert stopper.stopped is not None
    assert stopper.stopped["stage"] == 2 and stopper.stopped["rate"] == 20
    assert stopper.stopped["reasons"][0].endswith("x the lowest stage's")
    assert stopper.skip([_plan(3, 40, 160), _plan(4, 80, 320)]) == 480
    assert stopper.run_json() == {
        "ttft_p99_ms": None,
        "stopped": {
            "stage": 2,
            "rate": 20,
            "reasons": stopper.stopped["reasons"],
            "skipped_stages": [
                {"stage": 3, "rate": 40, "duration_s": 4.0},
                {"stage": 4, "rate": 80, "duration_s": 4.0},
            ],
        },
    }


def test_stopper_errors_and_latency_limit() -> None:
    assert EarlyStopper(EarlyStop()).saturated(_plan(0, 5, 100), [_tally(100, 2, [50.0] * 98)])
    limited = EarlyStopper(EarlyStop(ttft_p99_ms=40))
    assert limited.saturated(_plan(0, 5, 10), [_tally(10, 0, [50.0] * 10)])
    assert limited.stopped is not None
    assert limited.stopped["reasons"] == ["TTFT p99 50 ms > limit 40 ms"]


def test_stopper_counts_unsent_requests_against_the_rate() -> None:
    tally = StageTally(requests=100, sent=90, errors=0, ttfts_ms=[50.0] * 90)
    stopper = EarlyStopper(EarlyStop())
    assert stopper.saturated(_plan(0, 10, 100), [tally])  # 9.0/s of 10/s sent
    assert stopper.stopped is not None and stopper.stopped["reasons"][0] == "sent 9.00/s of 10/s"


@pytest.mark.parametrize(
    ("plans", "pods", "message"),
    [
        ([_plan(0, 5, 10)], 2, "needs one load pod"),
        ([StagePlan(0, None, None, (0, 0), concurrency=2)], 1, "needs rate stages"),
    ],
)
def test_check_early_stop_refuses_what_one_pod_cannot_decide(
    plans: list[StagePlan], pods: int, message: str
) -> None:
    check_early_stop(None, plans, pods)  # off: anything goes
    with pytest.raises(UsageError, match=message):
        check_early_stop(EarlyStop(), plans, pods)
