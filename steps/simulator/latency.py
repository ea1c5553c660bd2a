"""The latency model and admission queue, as pure values: no clock, no sleeping, no I/O.

The engine (engine.py) turns them into time: prefill takes `first_token_delay_s`, then every
decode step (one per itl) yields one token per running sequence, and a chunk leaves at the step
that decodes its last token.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

__all__ = [
    "AdmissionQueue",
    "Fault",
    "LatencyModel",
    "NoiseModel",
    "RequestNoise",
    "output_length",
    "pick_fault",
]

T = TypeVar("T")


@dataclass(frozen=True)
class LatencyModel:
    """TTFT = ttft + prefill per prompt token; then one decode step per itl (seconds)."""

    ttft_s: float
    itl_s: float
    prefill_s_per_token: float = 0.0
    tokens_per_chunk: int = 1

    def first_token_delay_s(self, prompt_tokens: int) -> float:
        """Seconds from admission to the first token (prefill)."""
        return self.ttft_s + self.prefill_s_per_token * prompt_tokens

    def chunk_sizes(self, output_tokens: int) -> list[int]:
        """Tokens per streamed chunk: prefill's token alone, then `tokens_per_chunk` per chunk.

        vLLM emits the prefill token by itself and may coalesce later decode steps into one
        chunk; the last chunk carries the remainder.
        """
        if output_tokens <= 0:
            return []
        full, rest = divmod(output_tokens - 1, self.tokens_per_chunk)
        return [1] + [self.tokens_per_chunk] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class RequestNoise:
    """One request's draw: factors on its TTFT and decode speed, and a decode stall (s)."""

    ttft_factor: float = 1.0
    itl_factor: float = 1.0
    stall_s: float = 0.0


@dataclass(frozen=True)
class NoiseModel:
    """How a real GPU server varies, off by default (every spread 0: the exact model above).

    A night's level drifts as a whole (`level_drift`: lognormal sigma of one factor per run on
    TTFT and ITL, the between-night variance), each request's TTFT and decode speed jitter
    (lognormal sigmas, median 1 so the model's values stay the medians), and a `stall_rate`
    share of requests stall once in decode for `stall_ms`. Calibration: README "Simulator noise".
    """

    ttft_jitter: float = 0.0
    itl_jitter: float = 0.0
    stall_rate: float = 0.0
    stall_ms: float = 0.0
    level_drift: float = 0.0

    def run_level(self, rng: random.Random) -> float:
        """This run's level factor (1.0 without drift; nothing drawn then)."""
        return math.exp(rng.gauss(0.0, self.level_drift)) if self.level_drift else 1.0

    def request(self, rng: random.Random) -> RequestNoise:
        """One request's draw; nothing is drawn for a spread that is off (same RNG stream)."""
        ttft = math.exp(rng.gauss(0.0, self.ttft_jitter)) if self.ttft_jitter else 1.0
        itl = math.exp(rng.gauss(0.0, self.itl_jitter)) if self.itl_jitter else 1.0
        stalled = self.stall_rate > 0 and rng.random() < self.stall_rate
        return RequestNoise(ttft, itl, self.stall_ms / 1e3 if stalled else 0.0)


def output_length(max_tokens: int, ignore_eos: bool, draw: float) -> int:
    """Tokens to generate: exactly `max_tokens` with ignore_eos, else a stop uniform in 1..max.

    `draw` is a uniform random number in [0, 1) from the seeded generator.
    """
    if ignore_eos or max_tokens <= 1:
        return max_tokens
    return 1 + int(draw * max_tokens)


class Fault(Enum):
    """Injected failures; the value is what ground truth records in `fault`."""

    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    DISCONNECT = "disconnect"
    MALFORMED = "malformed"


def pick_fault(
    draw: float, error_rate: float, disconnect_rate: float, malformed_rate: float
) -> Fault | None:
    """Map one uniform draw in [0, 1) to a fault by consecutive bands of the given rates.

    One draw (not one per kind) keeps the kinds exclusive and each rate exact; half of the
    error band answers 500, the other half 503.
    """
    if draw < error_rate:
        return Fault.ERROR_500 if draw < error_rate / 2 else Fault.ERROR_503
    draw -= error_rate
    if draw < disconnect_rate:
        return Fault.DISCONNECT
    draw -= disconnect_rate
    if draw < malformed_rate:
        return Fault.MALFORMED
    return None


class AdmissionQueue(Generic[T]):
    """At most `capacity` running items; the rest wait in FIFO order (vLLM's --max-num-seqs)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._running = 0
        self._waiting: deque[T] = deque()

    @property
    def running(self) -> int:
        """Items admitted and not yet released."""
        return self._running

    @property
    def waiting(self) -> int:
        """Items queued behind the running ones."""
        return len(self._waiting)

    def offer(self, item: T) -> bool:
        """Admit `item` now (True) or queue it (False) until a running item is released."""
        if self._running < self._capacity and not self._waiting:
            self._running += 1
            return True
        self._waiting.append(item)
        return False

    def release(self) -> T | None:
        """Free one running slot; returns the waiting item admitted into it, if any."""
        if self._running < 1:
            raise RuntimeError("release() without a running item")
        if self._waiting:
            return self._waiting.popleft()
        self._running -= 1
        return None

    def withdraw(self, item: T) -> bool:
        """Drop a waiting item (its client left); False when it was not waiting."""
        try:
            self._waiting.remove(item)
        except ValueError:
            return False
        return True
