"""Change points on constructed nightly series (steps.report.changepoints)."""

from __future__ import annotations

import numpy as np

from steps.report.changepoints import change_points

# Twenty nights with +-2 % noise, fixed so every run of the tests sees the same series.
NIGHTS = 100.0 * (1 + 0.02 * np.random.default_rng(7).standard_normal(20))


def test_change_points_unchanged_series_has_none() -> None:
    assert change_points(NIGHTS.tolist()) == []
    assert change_points([100.0] * 12) == []


def test_change_points_step_reported_once_where_it_began() -> None:
    series = NIGHTS.copy()
    series[12:] *= 1.15
    assert change_points(series.tolist()) == [12]


def test_change_points_single_noisy_night_is_not_a_change() -> None:
    for night in (0, 9, 19):
        series = NIGHTS.copy()
        series[night] *= 1.4
        assert change_points(series.tolist()) == [], night


def test_change_points_two_steps_both_found() -> None:
    series = NIGHTS.copy()
    series[7:] *= 1.2
    series[14:] *= 1.2
    assert change_points(series.tolist()) == [7, 14]


def test_change_points_same_seed_same_answer() -> None:
    series = NIGHTS.copy()
    series[10:] *= 1.06
    assert change_points(series.tolist(), seed=3) == change_points(series.tolist(), seed=3)
