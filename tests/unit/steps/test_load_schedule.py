"""steps.load.schedule: exact constant deadlines, reproducible poisson, ordered stages."""

from __future__ import annotations

import random

import pytest

from steps.load.config import ConcurrentStage, Stage
from steps.load.schedule import (
    constant_offsets_ns,
    plan_stages,
    poisson_offsets_ns,
    user_share,
    worker_share,
)
from steps.shared import LoadType


def test_constant_offsets_one_qps_ten_s_are_whole_seconds_from_zero() -> None:
    assert constant_offsets_ns(1, 10) == [i * 1_000_000_000 for i in range(10)]


def test_constant_offsets_twenty_qps_are_exact_fifty_ms_steps_without_drift() -> None:
    offsets = constant_offsets_ns(20, 10)
    assert len(offsets) == 200
    assert offsets == [i * 50_000_000 for i in range(200)]


def test_constant_offsets_fractional_rate_keeps_partial_window() -> None:
    # 0.5 QPS x 3 s: sends at 0 s and 2 s (inference-perf truncates this to one request).
    assert constant_offsets_ns(0.5, 3) == [0, 2_000_000_000]


def test_constant_offsets_non_integer_rate_stays_absolute() -> None:
    offsets = constant_offsets_ns(3, 1)
    assert offsets == [0, 333_333_333, 666_666_667]


def test_poisson_offsets_same_seed_same_schedule() -> None:
    a = poisson_offsets_ns(50, 10, random.Random(7))
    b = poisson_offsets_ns(50, 10, random.Random(7))
    c = poisson_offsets_ns(50, 10, random.Random(8))
    assert a == b
    assert a != c


def test_poisson_offsets_within_window_ascending_and_near_rate() -> None:
    offsets = poisson_offsets_ns(100, 30, random.Random(1))
    assert offsets == sorted(offsets)
    assert offsets[0] > 0 and offsets[-1] < 30_000_000_000
    assert 2700 < len(offsets) < 3300  # mean 3000, sd ~55


def test_plan_stages_keeps_order_rates_and_independent_poisson_streams() -> None:
    stages = [Stage(rate=5, duration=2), Stage(rate=10, duration=1)]
    plans = plan_stages(stages, LoadType.poisson, seed=3)
    assert [(p.stage, p.rate, p.duration_s) for p in plans] == [(0, 5, 2), (1, 10, 1)]
    other = plan_stages([Stage(rate=6, duration=2), stages[1]], LoadType.poisson, seed=3)
    assert other[1].offsets_ns == plans[1].offsets_ns  # changing stage 0 leaves stage 1 alone
    assert plans == plan_stages(stages, LoadType.poisson, seed=3)


def test_plan_stages_constant_window_ns() -> None:
    plans = plan_stages([Stage(rate=2, duration=1.5)], LoadType.constant, seed=0)
    assert plans[0].offsets_ns == (0, 500_000_000, 1_000_000_000)
    assert plans[0].window_ns == 1_500_000_000


def test_worker_share_round_robin_covers_all_once_and_evenly_spaced() -> None:
    shares = [list(worker_share(10, 3, w)) for w in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(i for s in shares for i in s) == list(range(10))


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("users", [1, 2, 7, 45, 64])
@pytest.mark.parametrize("requests", [1, 10, 45, 1000])
def test_user_share_splits_users_and_requests_exactly(
    requests: int, users: int, workers: int
) -> None:
    shares = [user_share(requests, users, workers, w) for w in range(workers)]
    assert sum(u for u, _ in shares) == users  # never rounded per worker (inference-perf #319)
    assert max(u for u, _ in shares) - min(u for u, _ in shares) <= 1
    indices = [i for _, r in shares for i in r]
    assert indices == list(range(requests))  # every request once, contiguous per worker
    assert all(len(r) == 0 for u, r in shares if u == 0)


def test_closed_loop_stage_plans_its_count_and_users() -> None:
    plans = plan_stages([ConcurrentStage(num_requests=5, concurrency_level=3)], "concurrent", 0)
    assert plans[0].offsets_ns == (0,) * 5 and plans[0].concurrency == 3
    assert plans[0].rate is None and plans[0].window_ns is None
