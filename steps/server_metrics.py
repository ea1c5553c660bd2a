"""The model server's own metrics as the load step samples them: file, columns, shared names.

The load step scrapes each model pod's Prometheus `/metrics` while it sends
(steps/load/scrape.py) and writes every sample as one row of `server_metrics.parquet`;
aggregate turns the rows into per-stage figures, the report plots them beside the client's
latencies. The file name, its columns and the mapping of each server's metric names onto the
few figures every server shares live here, once, because all three steps read them.

Servers name the same thing differently: vLLM `vllm:num_requests_waiting`, SGLang
`sglang:num_queue_reqs`, TGI `tgi_queue_size`. `SHARED_METRICS` maps each shared figure to the
sample names that carry it, in order of preference (vLLM renamed `gpu_cache_usage_perc` to
`kv_cache_usage_perc`); whatever is not mapped is still in the file, raw. An unknown server has
only raw rows and every shared figure null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

__all__ = [
    "SCRAPE_DURATION_METRIC",
    "SERVER_METRICS_FILE",
    "SERVER_METRICS_SCHEMA",
    "SHARED_METRICS",
    "UP_METRIC",
    "SharedMetric",
]

#: The load step's server-metrics file, beside records.parquet.
SERVER_METRICS_FILE = "server_metrics.parquet"

#: Synthetic rows the scraper adds per target and scrape (Prometheus's own names for them): 1
#: when the scrape returned a parsed page, 0 when it did not (refused, timed out, too large,
#: malformed), so a pod that stops answering is a visible gap, never a failed run.
UP_METRIC = "up"
SCRAPE_DURATION_METRIC = "scrape_duration_seconds"

SERVER_METRICS_SCHEMA = pa.schema(
    [
        # Scrape round (0, 1, ...): every target is scraped once per round, so summing a gauge
        # over pods is a sum within a round.
        pa.field("round", pa.int32(), nullable=False),
        # When the scrape's request was sent: ns since the run's t0 on time.monotonic_ns() (the
        # clock of records.parquet) and time.time_ns().
        pa.field("t_ns", pa.int64(), nullable=False),
        pa.field("wall_ns", pa.int64(), nullable=False),
        # When its response was complete (same clock as t_ns): the server's values are from
        # between the two. A window's first sample is one complete by its start.
        pa.field("t_end_ns", pa.int64(), nullable=False),
        # Who answered: the pod name in-cluster, else the base URL's host:port.
        pa.field("pod", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        # The metric family (`vllm:time_to_first_token_seconds`) and the sample's own name
        # (`..._bucket`, `..._sum`, `..._count`, `..._total` for a counter).
        pa.field("family", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("metric", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        # The sample's labels as JSON with sorted keys (`{"le":"0.1","model_name":"m"}`).
        pa.field("labels", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        # The family's type as the page declared it (counter, gauge, histogram, summary,
        # untyped, ...); the synthetic `up` and `scrape_duration_seconds` rows are gauges.
        pa.field("type", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    ]
)

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class SharedMetric:
    """A figure several servers export under their own names (sample names, best first)."""

    name: str
    kind: Kind
    samples: tuple[str, ...]
    description: str


#: The figures aggregate and the report read, by our name. Gauges are sample names; counters
#: the `_total` sample; histograms the family (its `_bucket`, `_sum`, `_count` samples).
SHARED_METRICS: dict[str, SharedMetric] = {
    m.name: m
    for m in (
        SharedMetric(
            "kv_cache_usage",
            "gauge",
            ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"),
            "KV-cache usage, fraction of the cache's blocks in use (1 = full)",
        ),
        SharedMetric(
            "running",
            "gauge",
            ("vllm:num_requests_running", "sglang:num_running_reqs", "tgi_batch_current_size"),
            "requests in the running batch",
        ),
        SharedMetric(
            "waiting",
            "gauge",
            ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size"),
            "requests queued, not yet scheduled",
        ),
        SharedMetric(
            "preemptions",
            "counter",
            ("vllm:num_preemptions_total",),
            "sequences preempted (KV cache full)",
        ),
        SharedMetric(
            "prefix_cache_queries",
            "counter",
            ("vllm:prefix_cache_queries_total",),
            "prompt tokens looked up in the prefix cache",
        ),
        SharedMetric(
            "prefix_cache_hits",
            "counter",
            ("vllm:prefix_cache_hits_total",),
            "prompt tokens found in the prefix cache",
        ),
        SharedMetric(
            "prompt_tokens",
            "counter",
            ("vllm:prompt_tokens_total", "sglang:prompt_tokens_total"),
            "prompt tokens processed",
        ),
        SharedMetric(
            "generation_tokens",
            "counter",
            ("vllm:generation_tokens_total", "sglang:generation_tokens_total"),
            "tokens generated",
        ),
        SharedMetric(
            "ttft",
            "histogram",
            ("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds"),
            "the server's time to first token (s)",
        ),
        SharedMetric(
            "e2e",
            "histogram",
            (
                "vllm:e2e_request_latency_seconds",
                "sglang:e2e_request_latency_seconds",
                "tgi_request_duration",
            ),
            "the server's end-to-end request latency (s)",
        ),
        SharedMetric(
            "itl",
            "histogram",
            (
                "vllm:inter_token_latency_seconds",
                "vllm:time_per_output_token_seconds",
                "sglang:inter_token_latency_seconds",
                "sglang:time_per_output_token_seconds",
            ),
            "the server's inter-token latency (s)",
        ),
    )
}
