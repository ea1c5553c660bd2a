"""steps.load.saturation: inference-perf's burst-and-drain estimate, the ladder's rules, the
generated stages; on hand-built records with exactly known answers."""

from __future__ import annotations

import numpy as np
import pytest

from steps.errors import BenchError
from steps.load.saturation import (
    Rung,
    burst_drain_rate,
    ladder_capacity,
    ladder_done,
    ladder_rung,
    sweep_rates,
)
from steps.shared import SweepType

S = 1e9


def test_burst_drain_takes_the_percentile_of_the_falls_between_half_second_samples() -> None:
    # 40 requests at t=0; 10 end at 1.2 s, 10 at 2.2 s, 10 at 3.2 s, 10 at 4.2 s: the server
    # completes 10 per second in lumps. Samples every 0.5 s: 40,40,30,30,20,20,10,10,0.
    sent = np.zeros(40)
    end = np.repeat([1.2, 2.2, 3.2, 4.2], 10) * S
    found = burst_drain_rate(sent, end, timeout_s=60, percentile=95)
    assert found.in_flight[:9] == [40, 40, 30, 30, 20, 20, 10, 10, 0]
    assert found.drain_rates == [20.0, 20.0, 20.0, 20.0]  # each fall of 10 over 0.5 s
    assert found.saturation_rate == 20.0  # twice the true 10/s: the lumps' bias


def test_burst_drain_with_fewer_than_two_falls_fails_as_inference_perf_does() -> None:
    sent = np.zeros(10)
    end = np.full(10, 30 * S)  # nothing ends within the 20 s watched
    with pytest.raises(BenchError, match=r"0 drain sample\(s\) within load\.sweep\.timeout 20 s"):
        burst_drain_rate(sent, end, timeout_s=20, percentile=95)


def test_ladder_rung_reads_throughput_latency_and_littles_law_from_the_steady_window() -> None:
    # 2 users, 6 requests, each 0.5 s, sent back to back: ends at 0.5, 1.0, 1.5 s.
    sent = np.array([0, 0, 0.5, 0.5, 1.0, 1.0]) * S
    end = sent + 0.5 * S
    ok = np.ones(6, dtype=bool)
    rung = ladder_rung(2, sent, end, ok, 0.0)
    assert rung.throughput == pytest.approx(4.0)  # 4 ended within [0, 1.0 s] (the last send)
    assert rung.latency_s == pytest.approx(0.5)
    assert rung.in_flight == pytest.approx(2.0)
    assert rung.littles_law == pytest.approx(1.0)


def _rung(users: int, throughput: float, failed: int = 0) -> Rung:
    return Rung(users, 6 * users, throughput, users / throughput, users, failed)


def test_ladder_stops_when_doubling_buys_under_ten_percent_and_takes_the_plateau() -> None:
    rungs = [_rung(1, 2.0), _rung(2, 4.0), _rung(4, 7.9)]
    assert not ladder_done(rungs)
    rungs.append(_rung(8, 8.6))  # +8.9 %
    assert ladder_done(rungs)
    assert ladder_capacity(rungs) == 8.6


def test_ladder_stops_on_errors_and_does_not_count_the_failing_rung() -> None:
    rungs = [_rung(1, 2.0), _rung(2, 4.0), _rung(4, 9.0, failed=3)]
    assert ladder_done(rungs)
    assert ladder_capacity(rungs) == 4.0


def test_sweep_rates_follow_inference_perf() -> None:
    assert sweep_rates(18, 5, SweepType.linear) == [1.0, 5.25, 9.5, 13.75, 18.0]
    expected = [round(1 + 18 - r, 2) for r in np.geomspace(18, 1, 5)]
    assert sweep_rates(18, 5, SweepType.geometric) == expected
    assert expected[-1] == 18.0 and expected[0] == 1.0
    with pytest.raises(BenchError, match=r"no saturation rate"):
        sweep_rates(0.0, 5, SweepType.linear)
