"""summary.json `server`: the model server's own metrics per stage and overall.

Read from the load step's server_metrics.parquet (steps/server_series.py does the reading;
steps/server_metrics.py names what each server calls the shared figures):
- KV-cache usage mean/max (a fraction per replica: averaged over pods per round), running and
  waiting requests mean/max/p99 (summed over pods per round), over the rounds in the window;
- preemptions, the prefix-cache hit rate and prompt/generation tokens per second from counter
  increases over the window (resets handled);
- the server's TTFT, e2e and ITL histograms as quantiles over the window;
- the client overhead check: for TTFT and e2e, the client's mean minus the server's, and every
  server bucket bound at which more client requests were at or under it than the server
  counted. A client request's latency includes the server's for the same request (network,
  HTTP and SSE on top), so with the same requests that never happens; the server's window
  reaches one scrape past the stage on both sides, so it can only count more, never fewer.
  A client faster than the server is an error in one of them, flagged in the report.

Several shards (a load spread over pods) each scraped the same servers: the first shard with
a server_metrics.parquet is used, the others would count every sample again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from steps.aggregate.read import Shard
from steps.aggregate.summary import Window
from steps.server_metrics import SERVER_METRICS_FILE
from steps.server_series import (
    HistogramWindow,
    ServerSamples,
    counter_increase,
    gauge_series,
    histogram_window,
    read_server_metrics,
)
from steps.summary_model import GaugeStats, Overhead, ServerGroup, ServerLatency

__all__ = ["read_shard_samples", "server_group"]

_S_PER_NS = 1e-9
_MS_PER_S = 1e3
_MS_PER_NS = 1e-6
#: Client latencies compared with the server's histogram of the same name.
OVERHEAD_METRICS = ("ttft", "e2e")


def read_shard_samples(shards: Sequence[Shard], origin_ns: int) -> ServerSamples | None:
    """The first shard's server metrics on the run's time line; None when no shard has any."""
    for shard in shards:
        path: Path = shard.records_path.parent / SERVER_METRICS_FILE
        if path.is_file():
            return read_server_metrics(path, shard.wall_start_ns - origin_ns)
    return None


def _gauge(samples: ServerSamples, name: str, how: str, window: Window) -> GaugeStats:
    series = gauge_series(samples.shared(name), how)
    inside = series[(series["t_ns"] >= window.start_ns) & (series["t_ns"] <= window.end_ns)]
    if inside.empty:
        return GaugeStats()
    values = inside["value"].to_numpy(dtype=np.float64)
    return GaugeStats(
        mean=float(values.mean()),
        max=float(inside["max"].max() if how == "mean" else values.max()),
        p99=float(np.percentile(values, 99)),
    )


def _latency(hist: HistogramWindow | None) -> ServerLatency | None:
    if hist is None:
        return None

    def ms(value: float | None) -> float | None:
        return None if value is None else value * _MS_PER_S

    return ServerLatency(
        count=hist.count,
        mean=ms(hist.mean),
        p50=ms(hist.quantile(0.5)),
        p90=ms(hist.quantile(0.9)),
        p99=ms(hist.quantile(0.99)),
    )


def overhead(client_ns: npt.NDArray[np.float64], hist: HistogramWindow | None) -> Overhead | None:
    """The client-vs-server comparison of one latency (None without the server's histogram)."""
    if hist is None or hist.count <= 0:
        return None
    client = client_ns[~np.isnan(client_ns)]
    client_mean = float(client.mean()) * _MS_PER_NS if len(client) else None
    server_mean = None if hist.mean is None else hist.mean * _MS_PER_S
    faster = [
        bound * _MS_PER_S
        for bound, server_count in zip(hist.bounds, hist.cumulative, strict=True)
        if not np.isinf(bound) and int((client <= bound / _S_PER_NS).sum()) > server_count
    ]
    excess = None
    if client_mean is not None and server_mean is not None:
        excess = client_mean - server_mean
    return Overhead(
        client_count=len(client),
        server_count=hist.count,
        client_mean_ms=client_mean,
        server_mean_ms=server_mean,
        overhead_ms=excess,
        client_faster_buckets=faster,
        consistent=not faster if len(client) else None,
    )


def server_group(samples: ServerSamples, window: Window, rows: pd.DataFrame) -> ServerGroup:
    """The `server` figures of one stage (or the run): `rows` are its requests (ok ones give
    the client's latencies)."""
    start, end = window.start_ns, window.end_ns
    in_window = samples.rows[(samples.rows["t_ns"] >= start) & (samples.rows["t_ns"] <= end)]
    scrapes, failed, targets = ServerSamples(in_window).scrape_counts()

    def increase(name: str) -> float | None:
        return counter_increase(samples.shared(name), start, end)

    span_s = (end - start) * _S_PER_NS
    prompt, generated = increase("prompt_tokens"), increase("generation_tokens")
    queries, hits = increase("prefix_cache_queries"), increase("prefix_cache_hits")
    hists = {
        name: histogram_window(samples.shared(name), start, end) for name in ("ttft", "e2e", "itl")
    }
    ok = rows[rows["status"] == "ok"]
    return ServerGroup(
        targets=targets,
        scrapes=scrapes,
        failed_scrapes=failed,
        kv_cache_usage=_gauge(samples, "kv_cache_usage", "mean", window),
        running=_gauge(samples, "running", "sum", window),
        waiting=_gauge(samples, "waiting", "sum", window),
        preemptions=increase("preemptions"),
        prefix_cache_hit_rate=(hits / queries) if hits is not None and queries else None,
        prompt_tokens_per_s=prompt / span_s if prompt is not None and span_s > 0 else None,
        generation_tokens_per_s=(
            generated / span_s if generated is not None and span_s > 0 else None
        ),
        latency_ms={name: _latency(hist) for name, hist in hists.items()},
        overhead={
            name: overhead(ok[name].to_numpy(dtype=np.float64), hists[name])
            for name in OVERHEAD_METRICS
        },
    )
