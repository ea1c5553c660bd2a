"""When each request is sent: absolute offsets from a stage's start, and each worker's share.

Pure functions (no clock, no I/O), so tests check deadlines exactly.

"constant" means evenly spaced sends at `start + i/rate`: the first request goes at the stage
start, none is late because of an earlier one (deadlines are absolute, never accumulated
sleeps), and there is no initial burst. inference-perf's "constant" is different: it draws
exponential gaps from an unseeded RNG and rescales them to the stage duration, which is Poisson
arrivals with an exact count (its "constant 1 QPS" sends gaps from 17 ms to 4.5 s).
"poisson" draws exponential gaps with mean 1/rate from a seeded RNG: same seed, same schedule.
A closed-loop ("concurrent") stage has no send times: its users send whenever they are free
(`steps.load.worker`); its plan is its request count and its number of users, split exactly
across the workers by `user_share`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from steps.load.config import ConcurrentStage, Stage
from steps.shared import LoadType

__all__ = [
    "StagePlan",
    "constant_offsets_ns",
    "plan_stages",
    "poisson_offsets_ns",
    "user_share",
    "worker_share",
]

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StagePlan:
    """One stage's schedule: send offsets in ns from the stage's start, ascending; for a
    closed-loop stage, no rate nor window, every offset 0 and its number of users."""

    stage: int
    rate: float | None
    duration_s: float | None
    offsets_ns: tuple[int, ...]
    concurrency: int | None = None

    @property
    def window_ns(self) -> int | None:
        """Length of the send window in ns (None: closed loop, it ends when its users do)."""
        return None if self.duration_s is None else round(self.duration_s * _NS_PER_S)


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


def plan_stages(
    stages: Sequence[Stage | ConcurrentStage], load_type: LoadType | str, seed: int
) -> list[StagePlan]:
    """Every stage's offsets; poisson stages use an RNG derived from (seed, stage index)."""
    plans = []
    for index, stage in enumerate(stages):
        if isinstance(stage, ConcurrentStage):
            plans.append(
                StagePlan(index, None, None, (0,) * stage.num_requests, stage.concurrency_level)
            )
            continue
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


def user_share(num_requests: int, users: int, num_workers: int, worker: int) -> tuple[int, range]:
    """A closed-loop stage's share of `worker`: (its users, its request indices).

    Users are split exactly: `users // num_workers` each and one more for the first
    `users % num_workers` workers, so the run holds exactly `users` in flight (inference-perf's
    per-worker rounding delivered 74.5 for 45: its issues #319/#320/#346). Requests follow the
    users (a contiguous block in proportion, the total exact), so every user sends about as many.
    """
    base, extra = divmod(users, num_workers)
    before = worker * base + min(worker, extra)
    mine = base + (1 if worker < extra else 0)
    first = num_requests * before // users
    last = num_requests * (before + mine) // users
    return mine, range(first, last)
