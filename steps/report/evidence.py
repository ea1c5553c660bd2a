"""The per-run regression verdict: one metric of this run against the baseline runs' spread.

Why not "±10 % against the previous run": a p99 of 300 requests is the 3rd-largest value, and
nights differ by more than their rows say (the server's state, its neighbours, the cluster), so
a single previous run is no baseline and a fixed band cries wolf or misses (issue 13).

The evidence (pure, deterministic; no resampling, so no seed to get wrong):

1. Each run, baseline and current, gives each metric as an `Estimate` from its rows: the value
   (a quantile, a rate, a fraction, defined as aggregate defines it) and its within-run standard
   error (quantiles: the distribution-free order-statistic interval; fractions: binomial with a
   Jeffreys half count, so a run without errors still has a little uncertainty; rates: the sum's).
2. The baseline level is the mean of the baseline runs' values; the spread a new night shows
   without any change is the larger of the between-run variance of those values (which already
   holds their within-run noise) and the mean within-run variance, times (1 + 1/K) for the
   uncertainty of the mean itself. That is a prediction interval for one more night.
3. The effect is the change against the level, relative (latencies, rates) or in points (error
   rate, SLO attainment), with a one-sided ALPHA bound on each side: Student's t with K - 1
   degrees of freedom when the between-run spread is what was estimated, the normal quantile when
   the within-run error (a known form) dominates.
4. Status: `regression` / `improvement` when the effect is beyond its noise bound AND at least the
   metric's practical tolerance; `unchanged` when it is within the tolerance (significant or not);
   `inconclusive` when it passes the tolerance but not the noise bound (never fails a run).
   With fewer than MIN_BASELINE_RUNS baseline runs the spread cannot be estimated: only the
   within-run error is known, and a change counts only past FALLBACK_FACTOR x the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from steps.record_metrics import (
    FloatArray,
    Slo,
    as_float,
    chunk_gaps,
    goodput,
    latencies_ns,
    ok_rows,
    per_second,
    percentiles,
    share,
    slo_attainment,
    slo_met,
)
from steps.summary_model import KEY_METRICS, REGRESSION_METRIC_NAMES, Group

__all__ = [
    "ALPHA",
    "DEFAULT_TOLERANCES",
    "FALLBACK_FACTOR",
    "MIN_BASELINE_RUNS",
    "ROW_COLUMNS",
    "Estimate",
    "MetricVerdict",
    "RunScale",
    "Status",
    "judge",
    "run_estimates",
]

Status = Literal["regression", "improvement", "unchanged", "inconclusive", "n/a"]

#: Columns of records.parquet the estimates read (history reads only these).
ROW_COLUMNS = (
    "status",
    "scheduled_ns",
    "sent_ns",
    "first_token_ns",
    "last_token_ns",
    "end_ns",
    "output_tokens",
    "chunk_offsets_us",
    "stage",  # a multi-stage run is also judged stage by stage (regression.stage_regressions)
)

#: One-sided error rate of each bound: with ~12 metrics judged a night, mostly moving together,
#: about one false flag in 20 unchanged nights before the tolerance cuts it further.
ALPHA = 0.01
_Z = 2.326  # normal quantile 1 - ALPHA
#: Student's t quantile 1 - ALPHA by degrees of freedom (no scipy in the report image).
_T = {1: 31.821, 2: 6.965, 3: 4.541, 4: 3.747, 5: 3.365, 6: 3.143, 7: 2.998, 8: 2.896,
      9: 2.821, 10: 2.764, 11: 2.718, 12: 2.681, 13: 2.650, 14: 2.624, 15: 2.602, 16: 2.583,
      17: 2.567, 18: 2.552, 19: 2.539, 20: 2.528, 25: 2.485, 30: 2.457, 40: 2.423}  # fmt: skip
#: The order-statistic interval is taken at 95 % and read as ± 1.96 standard errors.
_Z95 = 1.96
MIN_BASELINE_RUNS = 3
FALLBACK_FACTOR = 3.0
_NO_SLO = "no SLO set (aggregate --slo-ttft-ms/--slo-tpot-ms/--slo-e2e-ms)"
_NO_DATA = {"goodput_rps": _NO_SLO, "slo_attainment": _NO_SLO}

#: Practical thresholds: relative for latencies and rates, points for the two fractions. A
#: median moves little between identical nights, so 5 % of it is a real change; a p99 of a few
#: hundred requests swings far more, so only 15 % counts; one failed request in 200 is news.
DEFAULT_TOLERANCES: dict[str, float] = {
    "ttft_p50_ms": 0.05,
    "ttft_p99_ms": 0.15,
    "itl_p50_ms": 0.05,
    "itl_p99_ms": 0.15,
    "tpot_p50_ms": 0.05,
    "tpot_p99_ms": 0.15,
    "e2e_p50_ms": 0.05,
    "e2e_p99_ms": 0.15,
    "output_tokens_per_s": 0.05,
    "error_rate": 0.005,
    "goodput_rps": 0.05,
    "slo_attainment": 0.02,
}
assert set(DEFAULT_TOLERANCES) == set(REGRESSION_METRIC_NAMES)


@dataclass(frozen=True)
class Estimate:
    """A metric of one run from its rows, and its within-run standard error (same unit)."""

    value: float
    se: float


@dataclass(frozen=True)
class RunScale:
    """What rows alone do not say: the run's windows and size, from its summary.json."""

    window_s: float | None
    achieved_rate: float | None
    total: int

    @classmethod
    def of(cls, group: Group) -> RunScale:
        """The scale of a summary's GROUP."""
        return cls(group.window_s, group.achieved_rate, group.requests.total)


def _quantile(values: FloatArray, percent: float) -> Estimate | None:
    """The percentile as aggregate takes it (`percentiles`) and its order-statistic error."""
    x = np.sort(values[~np.isnan(values)])
    n = len(x)
    if n == 0:
        return None
    q = percent / 100
    spread = _Z95 * math.sqrt(n * q * (1 - q))
    lo = min(max(math.floor(q * (n - 1) - spread), 0), n - 1)
    hi = min(max(math.ceil(q * (n - 1) + spread), 0), n - 1)
    return Estimate(float(percentiles(x, [percent])[0]), float(x[hi] - x[lo]) / (2 * _Z95))


def _binomial_se(hits: int, n: int) -> float:
    """Standard error of hits / n (n > 0) with a Jeffreys half count: never exactly 0."""
    smoothed = (hits + 0.5) / (n + 1)
    return math.sqrt(smoothed * (1 - smoothed) / n)


def _fraction(hits: int, n: int) -> Estimate | None:
    """hits / n as aggregate's `share`, with its binomial error; None without rows."""
    value = share(hits, n)
    return None if value is None else Estimate(value, _binomial_se(hits, n))


@dataclass(frozen=True)
class _Rows:
    """The per-request arrays the estimates share (latencies in ms, NaN where undefined)."""

    n: int
    ok: np.ndarray
    sent_ns: FloatArray
    sent: int
    latency_ms: Mapping[str, FloatArray]
    itl_ms: FloatArray
    output_tokens: FloatArray
    met: np.ndarray | None


def _rows(table: pa.Table, slo: Slo) -> _Rows:
    times = {name: as_float(table.column(name)) for name in ROW_COLUMNS[1:6]}
    output_tokens = as_float(table.column("output_tokens"))
    latencies = latencies_ns(times, output_tokens)
    ok = ok_rows(table.column("status"))
    ok_offsets = table.column("chunk_offsets_us").filter(pa.array(ok)).combine_chunks()
    return _Rows(
        n=table.num_rows,
        ok=ok,
        sent_ns=times["sent_ns"],
        sent=int(np.count_nonzero(~np.isnan(times["sent_ns"]))),
        latency_ms={
            name: np.where(ok, latencies[name], np.nan) / 1e6 for name in ("ttft", "tpot", "e2e")
        },
        itl_ms=chunk_gaps(ok_offsets).astype(np.float64) / 1e3,
        output_tokens=np.where(ok, np.nan_to_num(output_tokens), 0.0),
        met=slo_met(latencies, ok, slo) if slo.is_set else None,
    )


def _throughput(rows: _Rows, scale: RunScale) -> Estimate | None:
    """Output tokens of ok requests per s of the window, as aggregate's throughput.

    The rows may be the first part of the run (history caps them): their sum is scaled to the
    run's request count before it is taken per second of the run's window.
    """
    if not scale.window_s or rows.n == 0:
        return None
    to_run = scale.total / rows.n
    tokens = rows.output_tokens
    value = per_second(float(tokens.sum()) * to_run, scale.window_s)
    se = per_second(math.sqrt(rows.n) * float(tokens.std()) * to_run, scale.window_s)
    return None if value is None or se is None else Estimate(value, se)


def _goodput(rows: _Rows, scale: RunScale) -> Estimate | None:
    """SLO-meeting requests per s of the send window, as aggregate's `goodput`.

    The rows may be the first part of the run (history caps them): at the run's achieved rate
    their sends span sent / achieved_rate seconds, the window they are counted over.
    """
    if rows.met is None or not scale.achieved_rate or rows.sent == 0:
        return None
    value = goodput(rows.met, rows.sent_ns, rows.sent / scale.achieved_rate)
    hits = int(np.count_nonzero(rows.met))
    se = scale.achieved_rate * _binomial_se(hits, rows.sent)
    return None if value is None else Estimate(value, se)


def _slo_attainment(rows: _Rows, _scale: RunScale) -> Estimate | None:
    """Share of all requests that met the SLO, as aggregate's `slo_attainment`."""
    if rows.met is None:
        return None
    value = slo_attainment(rows.met)
    se = _binomial_se(int(np.count_nonzero(rows.met)), rows.n) if rows.n else 0.0
    return None if value is None else Estimate(value, se)


def _latency_quantile(latency: str, percent: float) -> Callable[[_Rows, RunScale], Estimate | None]:
    """The estimator of one latency's percentile (0..100) over ok requests."""
    return lambda rows, _scale: _quantile(rows.latency_ms[latency], percent)


_ESTIMATORS: dict[str, Callable[[_Rows, RunScale], Estimate | None]] = {
    **{
        f"{latency}_p{q}_ms": _latency_quantile(latency, q)
        for latency in ("ttft", "tpot", "e2e")
        for q in (50, 99)
    },
    "itl_p50_ms": lambda r, _s: _quantile(r.itl_ms, 50),
    "itl_p99_ms": lambda r, _s: _quantile(r.itl_ms, 99),
    "output_tokens_per_s": _throughput,
    "error_rate": lambda r, _s: _fraction(r.n - int(np.count_nonzero(r.ok)), r.n),
    "goodput_rps": _goodput,
    "slo_attainment": _slo_attainment,
}
assert set(_ESTIMATORS) == set(REGRESSION_METRIC_NAMES)


def run_estimates(table: pa.Table, scale: RunScale, slo: Slo) -> dict[str, Estimate | None]:
    """Every regression metric of one run from its rows (ROW_COLUMNS); None = no data."""
    rows = _rows(table, slo)
    return {name: _ESTIMATORS[name](rows, scale) for name in REGRESSION_METRIC_NAMES}


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's verdict; `effect` and its interval are relative, or points for fractions.

    `effect` > 0 means the value went up (worse for a latency, better for a rate).
    """

    name: str
    status: Status
    current: float | None
    baseline: float | None
    effect: float | None
    low: float | None
    high: float | None
    tolerance: float
    relative: bool
    runs: int
    reason: str


@dataclass(frozen=True)
class _Spread:
    """Baseline level, the standard error a new night has around it, and its quantile."""

    level: float
    se: float
    quantile: float
    between: bool  # the between-run spread (not the within-run error) set `se`


def _spread(baseline: Sequence[Estimate]) -> _Spread:
    """Prediction spread of one more night around the mean of K baseline nights."""
    k = len(baseline)
    values = np.array([b.value for b in baseline])
    within = float(np.mean([b.se**2 for b in baseline]))
    between = float(values.var(ddof=1)) if k >= MIN_BASELINE_RUNS else 0.0
    variance = max(between, within) * (1 + 1 / k)
    uses_between = between > within
    quantile = _t_quantile(k - 1) if uses_between else _Z
    return _Spread(float(values.mean()), math.sqrt(variance), quantile, uses_between)


def _t_quantile(dof: int) -> float:
    """t quantile 1 - ALPHA: the table's entry at or below `dof` (conservative), z past 40."""
    if dof > max(_T):
        return _Z
    return _T[max(d for d in _T if d <= dof)]


def _percent(value: float, relative: bool) -> str:
    return f"{value:+.1%}" if relative else f"{value * 100:+.2f} pt"


def judge(
    name: str, current: Estimate | None, baseline: Sequence[Estimate], tolerance: float
) -> MetricVerdict:
    """`name`'s verdict for `current` against the baseline runs' estimates (module docstring)."""
    metric = KEY_METRICS[name]
    relative = metric.unit != "ratio"
    if current is None or not baseline:
        why = _NO_DATA.get(name, "no data in this run")
        if current is not None:
            why = "no baseline run has data for it"
        return MetricVerdict(name, "n/a", None if current is None else current.value, None,
                             None, None, None, tolerance, relative, len(baseline), why)  # fmt: skip
    spread = _spread(baseline)
    scale = abs(spread.level) if relative else 1.0
    if scale == 0:
        return MetricVerdict(name, "n/a", current.value, spread.level, None, None, None,
                             tolerance, relative, len(baseline),
                             "the baseline level is 0: no relative change")  # fmt: skip
    effect = (current.value - spread.level) / scale
    half = spread.quantile * spread.se / scale
    worse = effect if metric.better == "lower" else -effect
    status = _status(worse, half, tolerance, len(baseline))
    return MetricVerdict(
        name, status, current.value, spread.level, effect, effect - half, effect + half,
        tolerance, relative, len(baseline),
        _reason(status, effect, half, tolerance, relative, len(baseline), spread.between),
    )  # fmt: skip


def _status(worse: float, half: float, tolerance: float, runs: int) -> Status:
    """Evidence (beyond `half`) and practice (at least the tolerance) must agree to flag."""
    needed = tolerance if runs >= MIN_BASELINE_RUNS else FALLBACK_FACTOR * tolerance
    if abs(worse) < tolerance:
        return "unchanged"
    if abs(worse) > half and abs(worse) >= needed:
        return "regression" if worse > 0 else "improvement"
    return "inconclusive"


def _reason(
    status: Status,
    effect: float,
    half: float,
    tolerance: float,
    relative: bool,
    runs: int,
    between: bool,
) -> str:
    """One sentence: the change, its interval, and why that makes the status."""
    change = (
        f"{_percent(effect, relative)} vs the mean of {runs} baseline run{'s' * (runs != 1)} "
        f"(interval {_percent(effect - half, relative)} .. {_percent(effect + half, relative)}, "
        f"{'run-to-run' if between else 'within-run'} noise)"
    )
    tol = f"{tolerance:.0%}" if relative else f"{tolerance * 100:g} pt"
    if runs < MIN_BASELINE_RUNS and status != "unchanged":
        return (
            f"{change}; with fewer than {MIN_BASELINE_RUNS} baseline runs the run-to-run noise "
            f"is unknown, so a change must pass {FALLBACK_FACTOR:g} x the {tol} tolerance and "
            "the within-run noise to count."
        )
    if status == "unchanged":
        return f"{change}: within the {tol} tolerance."
    if status == "inconclusive":
        return f"{change}: past the {tol} tolerance but inside the noise, so not a verdict."
    return f"{change}: beyond both the noise and the {tol} tolerance."
