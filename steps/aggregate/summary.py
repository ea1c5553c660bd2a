"""GROUP building: the numbers of one stage (or of the whole run) from its request rows.

`measure_group` turns rows + pooled ITL + the stage window into a `GroupMetrics` in base units
(ns, requests, tokens); `group_model` builds summary.json's typed GROUP (ms, 1/s) from it and
`lifecycle.py` renders inference-perf's layout (seconds) from the same object, so both files
always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from steps.aggregate.metrics import Distribution, describe
from steps.aggregate.read import Shard
from steps.record_metrics import (
    LATENCIES_OVER_SENT,
    Slo,
    achieved_rate,
    cached_tokens_ratio,
    goodput,
    in_flight,
    is_saturated,
    output_token_mismatches,
    per_second,
    share,
    slo_attainment,
    slo_met,
)
from steps.records import STATUSES
from steps.summary_model import (
    LATENCY_METRICS,
    Concurrency,
    Group,
    LatencyMs,
    RequestCounts,
    StageGroup,
    Stats,
    Summary,
    Throughput,
    Tokens,
)

__all__ = [
    "OVERALL_STAGE",
    "GroupMetrics",
    "Window",
    "group_model",
    "measure_group",
    "overall_window",
    "stage_model",
    "stage_windows",
    "stats_model",
    "tidy_frame",
]

#: `stage` value of the whole-run rows in summary.parquet.
OVERALL_STAGE = -1
_NS_PER_MS = 1e6
_NS_PER_S = 1e9
#: inference-perf caps the messages listed per failure label at this many.
_MAX_ERROR_MESSAGES = 100


@dataclass(frozen=True)
class Window:
    """A stage's time window (ns on the merged time line) and what was asked of it."""

    start_ns: float
    end_ns: float
    send_window_s: float | None  # None: no run.json, achieved rate falls back to send times
    requested_rate: float | None
    duration_s: float | None
    concurrency: int | None = None  # users of a closed-loop stage


@dataclass(frozen=True)
class GroupMetrics:
    """Everything reported for one stage or the whole run, in base units."""

    stage: int | None
    duration_s: float | None
    counts: Mapping[str, int]
    latency_ns: Mapping[str, Distribution]
    failure_latency_ns: Distribution
    window_s: float | None
    send_window_s: float | None
    requested_rate: float | None
    achieved_rate: float | None
    prompt_tokens: Distribution
    cached_tokens: Distribution  # over ok rows whose server said (count 0: none did)
    cached_tokens_ratio: float | None
    output_tokens: Distribution
    prompt_tokens_total: int
    output_tokens_total: int
    prompt_sources: Mapping[str, int]
    output_sources: Mapping[str, int]
    output_token_mismatches: int
    failures_by_label: Mapping[str, tuple[int, Mapping[str, int]]]
    goodput: float | None = None  # None: no SLO given
    slo_attainment: float | None = None
    #: closed-loop stage: (users asked, mean in flight, most in flight); None otherwise
    concurrency: tuple[int, float | None, int] | None = None

    @property
    def saturated(self) -> bool:
        """Schedule delay p99 above the saturation bound (steps.record_metrics.is_saturated)."""
        p99 = self.latency_ns["schedule_delay"].percentiles[99.0]
        return is_saturated(None if p99 is None else p99 / _NS_PER_MS)

    def per_second(self, amount: float) -> float | None:
        """`amount` per second of the stage window (None for an empty window)."""
        return per_second(amount, self.window_s)


def _values(series: pd.Series[float]) -> npt.NDArray[np.float64]:
    """A fresh float array without NaN (describe() partitions it in place)."""
    array: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64)
    return array[~np.isnan(array)]


def _sources(series: pd.Series[Any]) -> dict[str, int]:
    counts = series.dropna().value_counts()
    return {str(name): int(count) for name, count in counts.items() if count}


def _failure_label(status: str, http_status: float) -> str:
    """inference-perf's failure labels: '<code> - <reason>' for HTTP errors, else the class."""
    if status == "http_error" and not np.isnan(http_status):
        code = int(http_status)
        try:
            return f"{code} - {HTTPStatus(code).phrase}"
        except ValueError:
            return f"{code} - HTTP Error"
    return {"timeout": "Timeout", "connect_error": "Connection Error"}.get(status, status)


def _failure_labels(failed: pd.DataFrame) -> dict[str, tuple[int, dict[str, int]]]:
    """Failures per inference-perf label: (count, {message: count}) with at most 100 messages."""
    labels = pd.Series(
        [
            _failure_label(s, h)
            for s, h in zip(failed["status"], failed["http_status"].to_numpy(), strict=True)
        ],
        dtype=object,
    )
    messages = pd.Series(failed["error"].astype(object).fillna("").to_numpy(), dtype=object)
    per_pair = pd.DataFrame({"label": labels, "message": messages}).value_counts(sort=False)
    grouped: dict[str, tuple[int, dict[str, int]]] = {}
    for (label, message), count in sorted(per_pair.items()):
        total, listed = grouped.get(str(label), (0, {}))
        if len(listed) < _MAX_ERROR_MESSAGES:
            listed[str(message)] = int(count)
        grouped[str(label)] = (total + int(count), listed)
    return grouped


def _slo_figures(rows: pd.DataFrame, window: Window, slo: Slo) -> dict[str, float | None]:
    """goodput and slo_attainment of the rows (None without an SLO: goodput needs one)."""
    if not slo.is_set:
        return {"goodput": None, "slo_attainment": None}
    latencies = {name: rows[name].to_numpy(dtype=np.float64) for name in ("ttft", "tpot", "e2e")}
    met = slo_met(latencies, (rows["status"] == "ok").to_numpy(dtype=bool), slo)
    sent_ns = rows["sent_ns"].to_numpy(dtype=np.float64)
    return {
        "goodput": goodput(met, sent_ns, window.send_window_s),
        "slo_attainment": slo_attainment(met),
    }


def measure_group(
    rows: pd.DataFrame, itl_ns: Distribution, window: Window, stage: int | None, slo: Slo
) -> GroupMetrics:
    """Metrics of one group. Counts over all rows, latencies over ok rows (see module docs)."""
    status = rows["status"]
    ok = rows[status == "ok"]
    counts = {"total": len(rows)} | {name: int((status == name).sum()) for name in STATUSES}
    latency = {
        name: describe(_values((rows if name in LATENCIES_OVER_SENT else ok)[name]))
        for name in LATENCY_METRICS
        if name != "itl"
    }
    latency["itl"] = itl_ns
    window_s = (window.end_ns - window.start_ns) / _NS_PER_S
    return GroupMetrics(
        stage=stage,
        duration_s=window.duration_s,
        counts=counts,
        latency_ns={name: latency[name] for name in LATENCY_METRICS},
        failure_latency_ns=describe(_values(rows["request_latency"][status != "ok"])),
        window_s=window_s if window_s > 0 else None,
        send_window_s=window.send_window_s,
        requested_rate=window.requested_rate,
        achieved_rate=achieved_rate(rows["sent_ns"].to_numpy(), window.send_window_s),
        prompt_tokens=describe(_values(ok["prompt_tokens"])),
        cached_tokens=describe(_values(ok["cached_tokens"])),
        cached_tokens_ratio=cached_tokens_ratio(
            ok["cached_tokens"].to_numpy(dtype=np.float64),
            ok["prompt_tokens"].to_numpy(dtype=np.float64),
        ),
        output_tokens=describe(_values(ok["output_tokens"])),
        prompt_tokens_total=int(ok["prompt_tokens"].sum()),
        output_tokens_total=int(ok["output_tokens"].sum()),
        prompt_sources=_sources(rows["prompt_tokens_source"]),
        output_sources=_sources(rows["output_tokens_source"]),
        output_token_mismatches=output_token_mismatches(
            rows["output_tokens"].to_numpy(dtype=np.float64, na_value=np.nan),
            rows["chunk_token_sum"].to_numpy(dtype=np.float64, na_value=np.nan),
        ),
        failures_by_label=_failure_labels(rows[status != "ok"]),
        concurrency=_delivered_concurrency(rows, window),
        **_slo_figures(rows, window, slo),
    )


def _delivered_concurrency(
    rows: pd.DataFrame, window: Window
) -> tuple[int, float | None, int] | None:
    """(users asked, mean and most in flight over the window) of a closed-loop stage."""
    if window.concurrency is None:
        return None
    mean, most = in_flight(
        rows["sent_ns"].to_numpy(dtype=np.float64),
        rows["end_ns"].to_numpy(dtype=np.float64),
        window.start_ns,
        window.end_ns,
    )
    return window.concurrency, mean, most


def _row_window(rows: pd.DataFrame) -> tuple[float, float]:
    """First scheduled send .. last time seen, for records without run.json."""
    if len(rows) == 0:
        return 0.0, 0.0
    last = np.fmax.reduce(
        [rows[c].to_numpy() for c in ("end_ns", "last_token_ns", "sent_ns", "scheduled_ns")]
    )
    return float(np.nanmin(rows["scheduled_ns"].to_numpy())), float(np.nanmax(last))


def stage_windows(
    shards: Sequence[Shard], requests: pd.DataFrame, origin_ns: int, stages: Iterable[int]
) -> dict[int, Window]:
    """Each stage's window on the merged time line.

    With run.json beside every shard: the union of the shards' stage windows, the sum of their
    rates (each shard's run.json states what that shard was asked to send) and the longest
    duration. Otherwise, from the rows: first scheduled .. last end, no requested rate.
    """
    windows = {}
    for stage in stages:
        runs = [
            (shard.wall_start_ns - origin_ns, s)
            for shard in shards
            if shard.run is not None
            for s in shard.run.stages
            if s.stage == stage
        ]
        if runs and all(shard.run is not None for shard in shards):
            start = min(shift + s.start_ns for shift, s in runs)
            send_end = max(shift + s.send_end_ns for shift, s in runs)
            windows[stage] = Window(
                start_ns=float(start),
                end_ns=float(max(shift + s.end_ns for shift, s in runs)),
                send_window_s=(send_end - start) / _NS_PER_S,
                requested_rate=_sum_or_none([s.rate for _, s in runs]),
                duration_s=_max_or_none([s.duration_s for _, s in runs]),
                concurrency=_users([s.concurrency_level for _, s in runs]),
            )
        else:
            start_ns, end_ns = _row_window(requests[requests["stage"] == stage])
            windows[stage] = Window(start_ns, end_ns, None, None, (end_ns - start_ns) / _NS_PER_S)
    return windows


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    """The sum, unless a value is unknown (a closed-loop stage has no requested rate)."""
    known = [v for v in values if v is not None]
    return sum(known) if len(known) == len(values) else None


def _users(levels: Sequence[int | None]) -> int | None:
    """A closed-loop stage's users over the shards (each states its own share)."""
    known = [v for v in levels if v is not None]
    return sum(known) if known and len(known) == len(levels) else None


def _max_or_none(values: Sequence[float | None]) -> float | None:
    """The largest, unless a value is unknown (a closed-loop stage has no set duration)."""
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def overall_window(windows: Mapping[int, Window]) -> Window:
    """The run's window: first stage start .. last stage end; requested rate time-weighted."""
    parts = list(windows.values())
    sends = [w.send_window_s for w in parts]
    rates = [w.requested_rate for w in parts]
    send_total = (
        sum(s for s in sends if s is not None) if all(s is not None for s in sends) else None
    )
    requested = None
    if send_total and all(r is not None for r in rates):
        requested = (
            sum((r or 0.0) * (s or 0.0) for r, s in zip(rates, sends, strict=True)) / send_total
        )
    start = min((w.start_ns for w in parts), default=0.0)
    end = max((w.end_ns for w in parts), default=0.0)
    return Window(start, end, send_total, requested, (end - start) / _NS_PER_S)


def stats_model(distribution: Distribution) -> Stats:
    """steps/CONTRACTS.md STATS of a distribution already in the wanted unit."""
    p = distribution.percentiles
    return Stats(
        count=distribution.count,
        mean=distribution.mean,
        min=distribution.min,
        max=distribution.max,
        std=distribution.std,
        p50=p[50.0],
        p90=p[90.0],
        p95=p[95.0],
        p99=p[99.0],
        p99_9=p[99.9],
    )


def group_model(group: GroupMetrics) -> Group:
    """steps/CONTRACTS.md GROUP (ms, 1/s) of the whole run or of a stage."""
    total, ok = group.counts["total"], group.counts["ok"]
    return Group(
        requests=RequestCounts(**group.counts),
        success_rate=share(ok, total),
        error_rate=share(total - ok, total),
        window_s=group.window_s,
        requested_rate=group.requested_rate,
        achieved_rate=group.achieved_rate,
        throughput=Throughput(
            requests_per_s=group.per_second(ok),
            input_tokens_per_s=group.per_second(group.prompt_tokens_total),
            output_tokens_per_s=group.per_second(group.output_tokens_total),
        ),
        latency_ms=LatencyMs(
            **{
                name: stats_model(dist.divided(_NS_PER_MS))
                for name, dist in group.latency_ns.items()
            }
        ),
        tokens=Tokens(
            prompt_tokens_source=dict(group.prompt_sources),
            output_tokens_source=dict(group.output_sources),
            output_token_mismatches=group.output_token_mismatches,
            prompt_tokens_mean=group.prompt_tokens.mean,
            output_tokens_mean=group.output_tokens.mean,
            cached_tokens_mean=group.cached_tokens.mean,
            cached_tokens_ratio=group.cached_tokens_ratio,
        ),
        load_generator_saturated=group.saturated,
        goodput=group.goodput,
        slo_attainment=group.slo_attainment,
        concurrency=None
        if group.concurrency is None
        else Concurrency(
            requested=group.concurrency[0], mean=group.concurrency[1], max=group.concurrency[2]
        ),
    )


def stage_model(group: GroupMetrics, stage: int) -> StageGroup:
    """A stage's GROUP plus its stage number, requested rate and duration."""
    return StageGroup(
        **dict(group_model(group)),
        stage=stage,
        rate=group.requested_rate,
        duration_s=group.duration_s,
    )


def _tidy_rows(
    stage: int, group: Mapping[str, Any]
) -> list[tuple[int, str, str, float | None, str]]:
    """One (stage, metric, stat, value, unit) row per number of a GROUP."""
    rows: list[tuple[int, str, str, float | None, str]] = []

    def add(metric: str, stat: str, value: float | None, unit: str) -> None:
        rows.append((stage, metric, stat, None if value is None else float(value), unit))

    for stat, value in group["requests"].items():
        add("requests", stat, value, "count")
    add("success_rate", "value", group["success_rate"], "ratio")
    add("error_rate", "value", group["error_rate"], "ratio")
    window = group["window_s"]
    add("window", "duration", None if window is None else window * 1e3, "ms")
    add("rate", "requested", group["requested_rate"], "1/s")
    add("rate", "achieved", group["achieved_rate"], "1/s")
    for stat, value in group["throughput"].items():
        add("throughput", stat, value, "1/s")
    for metric, stats in group["latency_ms"].items():
        for stat, value in stats.items():
            add(metric, stat, value, "count" if stat == "count" else "ms")
    tokens = group["tokens"]
    for key in ("prompt_tokens_source", "output_tokens_source"):
        for source, count in tokens[key].items():
            add(key, source, count, "count")
    add("output_token_mismatches", "value", tokens["output_token_mismatches"], "count")
    add("prompt_tokens", "mean", tokens["prompt_tokens_mean"], "count")
    add("output_tokens", "mean", tokens["output_tokens_mean"], "count")
    add("cached_tokens", "mean", tokens["cached_tokens_mean"], "count")
    add("cached_tokens", "ratio", tokens["cached_tokens_ratio"], "ratio")
    add("load_generator_saturated", "value", float(group["load_generator_saturated"]), "ratio")
    add("goodput", "value", group.get("goodput"), "1/s")
    add("slo_attainment", "value", group.get("slo_attainment"), "ratio")
    server = group.get("server")
    if server is not None:
        rows += _server_rows(stage, server)
    return rows


def _server_rows(
    stage: int, server: Mapping[str, Any]
) -> list[tuple[int, str, str, float | None, str]]:
    """summary.json `server` as tidy rows, each metric prefixed `server_`."""
    rows: list[tuple[int, str, str, float | None, str]] = []

    def add(metric: str, stat: str, value: float | None, unit: str) -> None:
        rows.append(
            (stage, "server_" + metric, stat, None if value is None else float(value), unit)
        )

    add("scrapes", "total", server["scrapes"], "count")
    add("scrapes", "failed", server["failed_scrapes"], "count")
    for gauge, unit in (("kv_cache_usage", "ratio"), ("running", "count"), ("waiting", "count")):
        for stat, value in server[gauge].items():
            add(gauge, stat, value, unit)
    add("preemptions", "value", server["preemptions"], "count")
    add("prefix_cache_hit_rate", "value", server["prefix_cache_hit_rate"], "ratio")
    add("throughput", "prompt_tokens_per_s", server["prompt_tokens_per_s"], "1/s")
    add("throughput", "generation_tokens_per_s", server["generation_tokens_per_s"], "1/s")
    for metric, stats in server["latency_ms"].items():
        for stat, value in (stats or {}).items():
            add(metric, stat, value, "count" if stat == "count" else "ms")
    for metric, check in server["overhead"].items():
        if check is not None:
            add(f"{metric}_overhead", "mean", check["overhead_ms"], "ms")
            add(
                f"{metric}_overhead",
                "client_faster_buckets",
                len(check["client_faster_buckets"]),
                "count",
            )
    return rows


def tidy_frame(summary: Summary) -> pd.DataFrame:
    """summary.json as the tidy table of summary.parquet (stage -1 = overall)."""
    rows = _tidy_rows(OVERALL_STAGE, summary.overall.model_dump(by_alias=True))
    for stage in summary.stages:
        rows += _tidy_rows(stage.stage, stage.model_dump(by_alias=True))
    frame = pd.DataFrame(rows, columns=["stage", "metric", "stat", "value", "unit"])
    return frame.astype({"stage": "int16", "value": "float64"})
