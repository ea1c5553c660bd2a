"""summary.json as a typed model, and the key metrics named once.

Aggregate builds a `Summary` and writes it (`Summary.to_json`); the report, its SLA and
regression checks and the workflow CLI read typed fields instead of string paths. The layout is
steps/CONTRACTS.md "summary.json": field names are a public contract (notebooks read the file),
so they never change; fields may be added. Reading ignores fields it does not know, so a report
reads summaries written by a newer aggregate, and every field a previous version wrote is here,
so it reads the history too.

`KEY_METRICS` names the few numbers a run is judged and charted by (`ttft_p99_ms`, ...): the
SLA file and flags, the regression table, the report's output parameters, the workflow's
parameters and Prometheus gauges all take their names, and their reading, from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from steps.errors import UsageError

__all__ = [
    "CAPACITY_OUTPUT_NAMES",
    "KEY_METRICS",
    "LATENCY_METRICS",
    "OUTPUT_METRIC_NAMES",
    "REGRESSION_METRIC_NAMES",
    "SLA_METRIC_NAMES",
    "Concurrency",
    "GaugeStats",
    "Group",
    "KeyMetric",
    "LatencyMs",
    "Overhead",
    "RequestCounts",
    "RunSection",
    "ServerGroup",
    "ServerLatency",
    "SloSection",
    "StageGroup",
    "Stats",
    "Summary",
    "Throughput",
    "Tokens",
    "parse_summary",
]


class _Part(BaseModel):
    """A part of summary.json: unknown fields ignored (newer writers), values frozen."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Stats(_Part):
    """One latency's STATS in ms; every field but count is null when there was no data."""

    count: int
    mean: float | None
    min: float | None
    max: float | None
    std: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    # "p99.9" in the file; constructed as p99_9 (a keyword cannot hold a dot).
    p99_9: float | None = Field(
        validation_alias=AliasChoices("p99.9", "p99_9"), serialization_alias="p99.9"
    )


class LatencyMs(_Part):
    """`latency_ms`: each latency's STATS (definitions: steps.record_metrics, README)."""

    ttft: Stats
    itl: Stats
    tpot: Stats
    ntpot: Stats
    e2e: Stats
    scheduled_e2e: Stats
    schedule_delay: Stats


#: summary.json `latency_ms` keys, in their order.
LATENCY_METRICS: tuple[str, ...] = tuple(LatencyMs.model_fields)


class RequestCounts(_Part):
    """`requests`: all rows, then rows per records.STATUSES value."""

    total: int
    ok: int
    http_error: int
    timeout: int
    connect_error: int
    protocol_error: int
    cancelled: int


class Throughput(_Part):
    """`throughput` of ok requests per second of the window."""

    requests_per_s: float | None
    input_tokens_per_s: float | None
    output_tokens_per_s: float | None


class Tokens(_Part):
    """`tokens`: where counts came from (records.TOKEN_SOURCES) and how they agree."""

    prompt_tokens_source: dict[str, int]
    output_tokens_source: dict[str, int]
    output_token_mismatches: int
    prompt_tokens_mean: float | None
    output_tokens_mean: float | None
    # Prefix-cache hits as the server reported them (usage.prompt_tokens_details.cached_tokens)
    # over ok requests; null when it reported none (and in summaries written before them).
    cached_tokens_mean: float | None = None
    cached_tokens_ratio: float | None = None


class Concurrency(_Part):
    """`concurrency` of a closed-loop stage: the users asked for and the requests in flight
    delivered over the stage window (time average, and the most at once)."""

    requested: int
    mean: float | None
    max: int


class GaugeStats(_Part):
    """A server gauge over the window's scrape rounds; null without samples."""

    mean: float | None = None
    max: float | None = None
    p99: float | None = None


class ServerLatency(_Part):
    """The server's own histogram of a latency over the window, as quantiles (ms)."""

    count: float
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


class Overhead(_Part):
    """Client vs server for one latency over the window (steps/aggregate/server_metrics.py).

    `overhead_ms`: the client's mean minus the server's, the client+network overhead.
    `client_faster_buckets`: the server's bucket bounds (ms) at which more client requests
    were at or under the bound than the server observed: impossible when both measure the
    same requests, so an error in one of them; `consistent` is false when there is any.
    """

    client_count: int
    server_count: float
    client_mean_ms: float | None
    server_mean_ms: float | None
    overhead_ms: float | None
    client_faster_buckets: list[float]
    consistent: bool | None


class ServerGroup(_Part):
    """`server`: the model server's own metrics over the window (load step's scrapes).

    Shared figures are null when the server does not export them (steps/server_metrics.py
    maps vLLM's, SGLang's and TGI's names); `scrapes`/`failed_scrapes` count every scrape of
    every pod in the window.
    """

    targets: list[str]
    scrapes: int
    failed_scrapes: int
    kv_cache_usage: GaugeStats
    running: GaugeStats
    waiting: GaugeStats
    preemptions: float | None
    prefix_cache_hit_rate: float | None
    prompt_tokens_per_s: float | None
    generation_tokens_per_s: float | None
    latency_ms: dict[str, ServerLatency | None]  # ttft, e2e, itl
    overhead: dict[str, Overhead | None]  # ttft, e2e


class Group(_Part):
    """GROUP: the numbers of the whole run (`overall`) or of one stage."""

    requests: RequestCounts
    success_rate: float | None
    error_rate: float | None
    window_s: float | None
    requested_rate: float | None
    achieved_rate: float | None
    throughput: Throughput
    latency_ms: LatencyMs
    tokens: Tokens
    load_generator_saturated: bool
    # Null when no SLO was given (and in summaries written before SLOs existed): goodput is
    # only defined against an SLO. steps.record_metrics defines both.
    goodput: float | None = None
    slo_attainment: float | None = None
    # Closed-loop stages only (load.type concurrent); null otherwise and in older summaries.
    concurrency: Concurrency | None = None
    # Null when the load step scraped no server metrics (off, or older runs).
    server: ServerGroup | None = None


class StageGroup(Group):
    """One stage's GROUP plus what the stage asked for."""

    stage: int
    rate: float | None
    duration_s: float | None


class RunSection(BaseModel):
    """`run`: the first shard's run.json minus `config`, the shard count and completeness.

    Every run.json field passes through (extra allowed, in steps/CONTRACTS.md order); the ones
    readers rely on are typed. All optional: records without run.json give only run_id and
    shards, and runs before completeness was recorded have no `complete`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    run_id: str | None = None
    scenario: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_type: str | None = None
    load_type: str | None = None
    # False: a non-streamed run (api.streaming false), whose TTFT, ITL and TPOT are null by
    # definition (each answer arrived whole); None in runs before it was recorded (streamed).
    streaming: bool | None = None
    started_at: str | None = None
    wall_start_ns: int | None = None
    num_workers: int | None = None
    tool_version: str | None = None
    stages: list[dict[str, Any]] | None = None
    client_cpu_s: float | None = None
    setup_cpu_s: float | None = None
    complete: bool | None = None
    scheduled_requests: int | None = None
    recorded_requests: int | None = None
    missing_requests: int | None = None
    interrupted: str | None = None
    lost_workers: list[int] | None = None
    incomplete_reasons: list[str] | None = None
    shards: int = 1
    # Several shards (load pods): each pod's figures (steps/aggregate/pods.py) and how far
    # apart their first sends were.
    pods: list[dict[str, Any]] | None = None
    start_spread_ms: float | None = None
    # load.early_stop: {"ttft_p99_ms", "stopped": null | {"stage", "rate", "reasons",
    # "skipped_stages"}}; null when early stop was off.
    early_stop: dict[str, Any] | None = None

    def stopped_early(self) -> str | None:
        """One sentence on where the early stop ended the run and why; None when it did not
        (the skipped stages were never scheduled: the run is complete, not missing data)."""
        stopped = (self.early_stop or {}).get("stopped")
        if not stopped:
            return None
        skipped = ", ".join(f"{s['rate']:g}/s" for s in stopped.get("skipped_stages", []))
        return (
            f"stopped early after stage {stopped['stage']} ({stopped['rate']:g}/s saturated: "
            f"{'; '.join(stopped['reasons'])}); skipped the stages at {skipped or 'none'}"
        )


class SloSection(_Part):
    """`slo`: the per-request bounds (ms) goodput was counted against; null = not a bound."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None


class Summary(_Part):
    """summary.json."""

    run: RunSection
    overall: Group
    stages: list[StageGroup]
    # Absent in summaries written before SLOs existed; all-null when none was given.
    slo: SloSection | None = None

    def to_json(self) -> str:
        """The file's text: fields never set (run.json keys a run lacks) are left out."""
        document = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return json.dumps(document, indent=2, allow_nan=False) + "\n"


def parse_summary(text: str | bytes, source: str) -> Summary:
    """summary.json text as a Summary; not JSON or not the layout: one-line UsageError."""
    try:
        return Summary.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        raise UsageError(
            f"{source}: not a summary.json (steps/CONTRACTS.md): {where}: {error['msg']}"
        ) from None


Direction = Literal["lower", "higher"]
Unit = Literal["ms", "ratio", "1/s"]


@dataclass(frozen=True)
class KeyMetric:
    """A number a run is judged by: its name everywhere, what it reads, which way is better."""

    name: str
    description: str
    read: Callable[[Group], float | None]
    better: Direction = "lower"
    unit: Unit = "ms"


KEY_METRICS: dict[str, KeyMetric] = {
    metric.name: metric
    for metric in (
        KeyMetric(
            "ttft_p50_ms", "Time to first token, median (ms)", lambda g: g.latency_ms.ttft.p50
        ),
        KeyMetric("ttft_p99_ms", "Time to first token, p99 (ms)", lambda g: g.latency_ms.ttft.p99),
        KeyMetric("itl_p50_ms", "Inter-token latency, median (ms)", lambda g: g.latency_ms.itl.p50),
        KeyMetric("itl_p99_ms", "Inter-token latency, p99 (ms)", lambda g: g.latency_ms.itl.p99),
        KeyMetric(
            "tpot_p50_ms", "Time per output token, median (ms)", lambda g: g.latency_ms.tpot.p50
        ),
        KeyMetric(
            "tpot_p99_ms", "Time per output token, p99 (ms)", lambda g: g.latency_ms.tpot.p99
        ),
        KeyMetric("e2e_p50_ms", "End-to-end latency, median (ms)", lambda g: g.latency_ms.e2e.p50),
        KeyMetric("e2e_p99_ms", "End-to-end latency, p99 (ms)", lambda g: g.latency_ms.e2e.p99),
        KeyMetric(
            "error_rate", "Fraction of requests that failed", lambda g: g.error_rate, unit="ratio"
        ),
        KeyMetric(
            "schedule_delay_p99_ms",
            "Send lag behind the schedule, p99 (ms)",
            lambda g: g.latency_ms.schedule_delay.p99,
        ),
        KeyMetric(
            "output_tokens_per_s",
            "Output tokens per second of ok requests",
            lambda g: g.throughput.output_tokens_per_s,
            better="higher",
            unit="1/s",
        ),
        KeyMetric(
            "goodput_rps",
            "Requests per second meeting every SLO bound",
            lambda g: g.goodput,
            better="higher",
            unit="1/s",
        ),
        KeyMetric(
            "slo_attainment",
            "Fraction of requests meeting every SLO bound",
            lambda g: g.slo_attainment,
            better="higher",
            unit="ratio",
        ),
    )
}

#: Metrics an SLA may bound (SLA file keys; flag `--sla-<name>`; workflow parameter `sla_<name>`):
#: an upper bound, or a lower bound for a metric where higher is better (goodput).
SLA_METRIC_NAMES: tuple[str, ...] = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p99_ms",
    "error_rate",
    "schedule_delay_p99_ms",
    "goodput_rps",
    "slo_attainment",
)
#: Metrics judged against the run history (the report's regression verdict and trend).
REGRESSION_METRIC_NAMES: tuple[str, ...] = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "output_tokens_per_s",
    "error_rate",
    "goodput_rps",
    "slo_attainment",
)
#: Metrics the report writes as Argo output parameters (and the workflow exports as gauges).
OUTPUT_METRIC_NAMES: tuple[str, ...] = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "error_rate",
)
#: A multi-stage run's capacity reading (steps.report.capacity) as the report's output
#: parameters, in requests per second; "" for a run that is not a ladder of rates.
CAPACITY_OUTPUT_NAMES: tuple[str, ...] = ("knee_rate", "max_rate_within_sla", "recommended_rate")
