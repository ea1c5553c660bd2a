"""Change points of a nightly series: where a metric's level shifted, E-Divisive style.

E-Divisive with means (Matteson & James 2014, the method of MongoDB's signal-processing-
algorithms and of Apache Otava/Hunter): split a series where the energy distance between the two
sides, weighted by their sizes, is largest; keep the split only if a permutation test says that
distance is unlikely without one (fewer than ALPHA of SEEDED shuffles reach it); recurse into
both sides. Why our own ~50 lines instead of a dependency (README "Change points"): the MongoDB
package pins numpy < 2 (the report image has numpy 2), Otava pins an exact numpy and pulls a
BigQuery, Postgres and Slack client, and `ruptures` needs scipy (~40 MB) for a penalised
search that has no significance test. The series here are a few dozen points, so the O(n^2)
distance matrix costs nothing.

A segment has at least MIN_SIZE points on each side of a split, so one odd night can never be a
change point by itself, and a step is reported once, at the first run of the new level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["ALPHA", "MIN_SIZE", "PERMUTATIONS", "change_points"]

ALPHA = 0.01
PERMUTATIONS = 199
MIN_SIZE = 2

_Matrix = npt.NDArray[np.float64]


def _block(prefix: _Matrix, r0: int, r1: int, c0: int, c1: int) -> float:
    """Sum of the distance matrix over rows r0..r1-1, columns c0..c1-1 (2-D prefix sums)."""
    return float(prefix[r1, c1] - prefix[r0, c1] - prefix[r1, c0] + prefix[r0, c0])


def _best_split(values: npt.NDArray[np.float64]) -> tuple[int, float]:
    """The split index (first point of the right side) with the largest weighted energy."""
    n = len(values)
    distances = np.abs(values[:, None] - values[None, :])
    prefix = np.zeros((n + 1, n + 1))
    prefix[1:, 1:] = distances.cumsum(axis=0).cumsum(axis=1)
    best, best_q = -1, -np.inf
    for tau in range(MIN_SIZE, n - MIN_SIZE + 1):
        m, k = tau, n - tau
        cross = _block(prefix, 0, tau, tau, n) * 2 / (m * k)
        within = _block(prefix, 0, tau, 0, tau) / m**2 + _block(prefix, tau, n, tau, n) / k**2
        q = m * k / (m + k) * (cross - within)
        if q > best_q:
            best, best_q = tau, q
    return best, best_q


def _significant(values: npt.NDArray[np.float64], q: float, rng: np.random.Generator) -> bool:
    """Permutation test: does a shuffle of the segment reach energy `q` less than ALPHA often?"""
    reached = sum(_best_split(rng.permutation(values))[1] >= q for _ in range(PERMUTATIONS))
    return (reached + 1) / (PERMUTATIONS + 1) <= ALPHA


def change_points(values: Sequence[float], seed: int = 0) -> list[int]:
    """Indices into `values` where a new level begins, ascending (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    series = np.asarray(values, dtype=np.float64)
    found: list[int] = []
    segments = [(0, len(series))]
    while segments:
        start, end = segments.pop()
        segment = series[start:end]
        if len(segment) < 2 * MIN_SIZE or np.ptp(segment) == 0:
            continue
        tau, q = _best_split(segment)
        if _significant(segment, q, rng):
            found.append(start + tau)
            segments += [(start, start + tau), (start + tau, end)]
    return sorted(found)
