"""Saturation estimators of the sweep probe, and the stages a sweep generates: pure functions
over the records of the probe's load runs (no clock, no I/O), so tests check them exactly.

Two estimators:

- `burst_drain_rate`: inference-perf's (`loadgen.preprocess`), ported for parity, bias included.
  It sends `num_requests` in 5 s (evenly here; theirs draws exponential gaps rescaled to 5 s,
  which changes nothing a flood of the queue shows; their in-flight cap of 100 per worker
  applies here only as `load.worker_max_concurrency`), samples the requests in flight every
  0.5 s for up to `timeout` s, takes every fall between two samples as a drain rate (fall /
  0.5 s) and reports their `saturation_percentile`. A server finishes requests in lumps (a
  continuous batch completes sequences of equal length in the same step), so the falls swing
  between 0 and several times the mean completion rate, and a high percentile of them
  overstates capacity; how much depends on where the 0.5 s grid falls on the lumps (their
  issue #300, PR #711). A run whose drain outlasts `timeout` sees fewer falls; with fewer than
  2 it fails, as theirs does.
- `ladder_rung` / `ladder_done`: ours. Closed-loop rungs of N = 1, 2, 4, ... users; a rung's
  throughput X = completions per second while every user still had work, its latency R = their
  mean e2e. Below capacity X grows with N at constant R; at capacity X stays flat while R grows
  (X = N / R, Little's law, checked per rung against the measured mean in flight). Capacity is
  the plateau's throughput: the ladder stops once doubling the users buys less than 10 %.

The generated stages follow inference-perf: `num_stages` rates from 1/s to the saturation rate,
linear (evenly) or geometric (`1 + sat - geomspace(sat, 1, n)`: clustered near saturation),
rounded to 2 decimals, each `stage_duration` s.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from steps.errors import BenchError
from steps.record_metrics import FloatArray, in_flight
from steps.shared import SweepType

__all__ = [
    "BURST_SECONDS",
    "LADDER_GAIN",
    "SAMPLE_INTERVAL_S",
    "BurstEvidence",
    "Rung",
    "burst_drain_rate",
    "ladder_capacity",
    "ladder_done",
    "ladder_rung",
    "sweep_rates",
]

#: inference-perf sends the probe's requests within this many seconds.
BURST_SECONDS = 5.0
#: inference-perf samples the requests in flight this often.
SAMPLE_INTERVAL_S = 0.5
#: The ladder stops once doubling the users raises throughput by less than this share.
LADDER_GAIN = 0.10

_NS_PER_S = 1e9


@dataclass(frozen=True)
class BurstEvidence:
    """What the burst-and-drain estimate read: the in-flight samples and their falls."""

    in_flight: list[int]
    drain_rates: list[float]
    percentile: float
    saturation_rate: float


def burst_drain_rate(
    sent_ns: FloatArray, end_ns: FloatArray, timeout_s: float, percentile: float
) -> BurstEvidence:
    """inference-perf's estimate from one burst's records (times in ns since the burst began).

    In flight at t = sent by t and not ended by t (their counter goes up at the send and down
    at the end, whatever the outcome). Samples every 0.5 s while t < timeout, until the burst
    is over and nothing is in flight.
    """
    sent = np.sort(sent_ns[~np.isnan(sent_ns)])
    ends = np.sort(end_ns[~np.isnan(sent_ns)])
    samples: list[int] = []
    k = 1
    while k * SAMPLE_INTERVAL_S < timeout_s:
        t = k * SAMPLE_INTERVAL_S * _NS_PER_S
        active = int(np.searchsorted(sent, t, "right") - np.searchsorted(ends, t, "right"))
        samples.append(active)
        if active == 0 and k * SAMPLE_INTERVAL_S > BURST_SECONDS:
            break
        k += 1
    rates = [
        (before - after) / SAMPLE_INTERVAL_S
        for before, after in pairwise(samples)
        if after < before
    ]
    if len(rates) < 2:
        raise BenchError(
            f"burst probe: {len(rates)} drain sample(s) within load.sweep.timeout "
            f"{timeout_s:g} s; need 2 (raise the timeout or num_requests)"
        )
    return BurstEvidence(samples, rates, percentile, float(np.percentile(rates, percentile)))


@dataclass(frozen=True)
class Rung:
    """One closed-loop rung: `users` in flight; throughput (1/s) and mean e2e (s) while every
    user had work; the mean measured in flight then; failed requests over the rung."""

    users: int
    requests: int
    throughput: float
    latency_s: float
    in_flight: float
    failed: int

    @property
    def littles_law(self) -> float:
        """X * R / measured in flight: 1 when the rung was steady (Little's law)."""
        return self.throughput * self.latency_s / self.in_flight if self.in_flight else 0.0


def ladder_rung(
    users: int, sent_ns: FloatArray, end_ns: FloatArray, ok: np.ndarray, start_ns: float
) -> Rung:
    """A rung from its records (ns since t0; `start_ns` the stage start).

    The steady window runs from the start to the last send: after it users run out of work
    and fewer than `users` are in flight, so the tail is left out.
    """
    stop = float(np.nanmax(sent_ns)) if np.any(~np.isnan(sent_ns)) else start_ns
    done = ok & (end_ns > start_ns) & (end_ns <= stop)
    span_s = (stop - start_ns) / _NS_PER_S
    throughput = float(done.sum()) / span_s if span_s > 0 else 0.0
    latency_s = float(np.mean(end_ns[done] - sent_ns[done]) / _NS_PER_S) if done.any() else 0.0
    mean, _ = in_flight(sent_ns, end_ns, start_ns, stop)
    return Rung(users, len(sent_ns), throughput, latency_s, mean or 0.0, int((~ok).sum()))


def ladder_done(rungs: list[Rung]) -> bool:
    """True once the last rung raised throughput by less than LADDER_GAIN over the best before,
    or failed more than 5 % of its requests (the server breaks before it plateaus)."""
    last = rungs[-1]
    if last.failed > 0.05 * last.requests:
        return True
    if len(rungs) < 2:
        return False
    best = max(r.throughput for r in rungs[:-1])
    return last.throughput < (1 + LADDER_GAIN) * best


def ladder_capacity(rungs: list[Rung]) -> float:
    """The plateau's throughput: the best rung that failed at most 5 % of its requests."""
    good = [r.throughput for r in rungs if r.failed <= 0.05 * r.requests]
    return max(good, default=0.0)


def sweep_rates(saturation: float, num_stages: int, kind: SweepType) -> list[float]:
    """inference-perf's generated rates from 1/s to `saturation`, rounded to 2 decimals."""
    if not saturation > 0:
        raise BenchError(f"probe found no saturation rate ({saturation:g}/s): nothing to sweep")
    if kind is SweepType.linear:
        rates = np.linspace(1, saturation, num_stages)
    else:
        rates = 1 + saturation - np.geomspace(saturation, 1, num_stages)
    rounded = [round(float(r), 2) for r in rates]
    return [r if r > 0 else 0.01 for r in rounded]
