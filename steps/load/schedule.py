"""When each request is sent: absolute offsets from a stage's start, and each worker's share.

Pure functions (no clock, no I/O), so tests check deadlines exactly.

"constant" means evenly spaced sends at `start + i/rate`: the first request goes at the stage
start, none is late because of an earlier one (deadlines are absolute, never accumulated
sleeps), and there is no initial burst. inference-perf's "constant" is different: it draws
exponential gaps from an unseeded RNG and rescales them to the stage duration, which is Poisson
arrivals with an exact count (its "constant 1 QPS" sends gaps from 17 ms to 4.5 s).
"poisson" draws exponential gaps with mean 1/rate from a seeded RNG: same seed, same schedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from steps.load.config import Stage
from steps.shared import LoadType

__all__ = [
    "StagePlan",
    "constant_offsets_ns",
    "plan_stages",
    "poisson_offsets_ns",
    "worker_share",
]

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StagePlan:
    """One stage's schedule: send offsets in ns from the stage's start, ascending."""

    stage: int
    rate: float
    duration_s: float
    offsets_ns: tuple[int, ...]

    @property
    def window_ns(self) -> int:
        """Length of the send window in ns."""
        return round(self.duration_s * _NS_PER_S)


def constant_offsets_ns(rate: float, duration_s: float) -> list[int]:
    """Offsets `i/rate` (ns) for every i with i/rate < duration_s: 1 QPS x 10 s -> 0 s .. 9 s."""
    # The epsilon keeps 20 QPS x 10 s at exactly 200 requests despite float rounding.
    count = math.ceil(rate * duration_s - 1e-9)
    return [round(i * _NS_PER_S / rate) for i in range(count)]


def poisson_offsets_ns(rate: float, duration_s: float, rng: random.Random) -> list[int]:
    """Arrival offsets (ns) of a Poisson process with `rate` per second within the window."""
    offsets: list[int] = []
    t = rng.expovariate(rate)
    while t < duration_s:
        offsets.append(round(t * _NS_PER_S))
        t += rng.expovariate(rate)
    return offsets


def plan_stages(stages: Sequence[Stage], load_type: LoadType, seed: int) -> list[StagePlan]:
    """Every stage's offsets; poisson stages use an RNG derived from (seed, stage index)."""
    plans = []
    for index, stage in enumerate(stages):
        if load_type is LoadType.constant:
            offsets = constant_offsets_ns(stage.rate, stage.duration)
        else:
            # One stream per stage: changing stage 0 does not shift stage 1's arrivals.
            rng = random.Random(seed * 1_000_003 + index)
            offsets = poisson_offsets_ns(stage.rate, stage.duration, rng)
        plans.append(StagePlan(index, stage.rate, stage.duration, tuple(offsets)))
    return plans


def worker_share(num_requests: int, num_workers: int, worker: int) -> range:
    """Request indices of `worker`: round-robin, so each worker's sends stay evenly spaced."""
    return range(worker, num_requests, num_workers)
