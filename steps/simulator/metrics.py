"""vLLM-named Prometheus metrics, rendered as text exposition format 0.0.4.

Names, label (`model_name`) and histogram buckets follow vLLM's `/metrics` so dashboards and
scrapers built for vLLM read the simulator unchanged. Observations are a bisect and an add:
cheap enough to run per request.

The gauges follow the engine's state, so tests have ground truth for what the load step
scrapes: running and waiting are the admission queue's (`--max-num-seqs`: a request beyond it
shows as waiting), KV-cache usage is the tokens the admitted sequences hold (prompt plus the
tokens decoded so far, at one per step since the first) over `--kv-cache-tokens`, computed when
the page is rendered (nothing per step). The simulator never preempts (admission is by count
only), so `vllm:num_preemptions_total` stays 0; prompts are distinct, so the prefix cache is
queried for every prompt token and never hits.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import Protocol

__all__ = [
    "E2E_BUCKETS_S",
    "ITL_BUCKETS_S",
    "TTFT_BUCKETS_S",
    "Histogram",
    "KvCache",
    "KvHolder",
    "Metrics",
]

#: vLLM's buckets for vllm:time_to_first_token_seconds.
TTFT_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
#: vLLM's buckets for vllm:inter_token_latency_seconds.
ITL_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
#: vLLM's buckets for vllm:e2e_request_latency_seconds.
E2E_BUCKETS_S = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


class Histogram:
    """A cumulative Prometheus histogram over fixed upper bounds."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # last slot is +Inf only
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        """Add `times` observations of `value` (seconds)."""
        self.counts[bisect_left(self.buckets, value)] += times
        self.total += value * times
        self.count += times

    def render(self, name: str, labels: str) -> list[str]:
        """Exposition lines for this histogram (`_bucket`, `_sum`, `_count`)."""
        lines = []
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cumulative += count
            lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}')
        lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum{{{labels}}} {self.total}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


class KvHolder(Protocol):
    """What the KV cache reads of an admitted sequence (`sequence.SimSequence`)."""

    prompt_tokens: int
    first_token_at: float  # monotonic s; 0.0 until its first token


class KvCache:
    """Tokens held by the admitted sequences, over the cache's capacity in tokens."""

    def __init__(self, capacity_tokens: int, itl_s: float) -> None:
        self.capacity = capacity_tokens
        self.itl_s = itl_s
        self.admitted: dict[int, tuple[KvHolder, int]] = {}  # id -> (sequence, output tokens)

    def admit(self, seq: KvHolder, output_tokens: int) -> None:
        """`seq` holds its prompt's blocks from admission (prefill) on."""
        self.admitted[id(seq)] = (seq, output_tokens)

    def release(self, seq: KvHolder) -> None:
        """`seq` finished or was aborted: its blocks are free."""
        self.admitted.pop(id(seq), None)

    def usage(self, now: float) -> float:
        """Fraction of the cache in use at `now` (monotonic s), at most 1."""
        held = 0
        for seq, output_tokens in self.admitted.values():
            decoded = 0
            if seq.first_token_at:
                steps = (now - seq.first_token_at) / self.itl_s if self.itl_s > 0 else output_tokens
                decoded = min(output_tokens, 1 + int(steps))
            held += seq.prompt_tokens + decoded
        return min(held / self.capacity, 1.0)


class Metrics:
    """The simulator's counters; gauges are read from the engine at render time."""

    def __init__(self, model: str, kv_cache: KvCache) -> None:
        self._labels = f'model_name="{model}"'
        self.kv_cache = kv_cache
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: Counter[str] = Counter()  # by finished_reason
        self.ttft = Histogram(TTFT_BUCKETS_S)
        self.itl = Histogram(ITL_BUCKETS_S)
        self.e2e = Histogram(E2E_BUCKETS_S)

    def render(self, running: int, waiting: int, now: float) -> bytes:
        """The whole /metrics page (`now`: monotonic s, for the KV-cache usage)."""
        labels = self._labels
        out = [
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{{{labels}}} {self.kv_cache.usage(now)}",
            "# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.",
            "# TYPE vllm:num_preemptions_total counter",
            f"vllm:num_preemptions_total{{{labels}}} 0",
            "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of tokens.",
            "# TYPE vllm:prefix_cache_queries_total counter",
            f"vllm:prefix_cache_queries_total{{{labels}}} {self.prompt_tokens}",
            "# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of tokens.",
            "# TYPE vllm:prefix_cache_hits_total counter",
            f"vllm:prefix_cache_hits_total{{{labels}}} 0",
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{labels}}} {running}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{{{labels}}} {waiting}",
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{{{labels}}} {self.prompt_tokens}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{labels}}} {self.generation_tokens}",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
        ]
        for reason in sorted(self.success) or ["length"]:
            out.append(
                f'vllm:request_success_total{{finished_reason="{reason}",{labels}}} '
                f"{self.success[reason]}"
            )
        for name, help_text, hist in (
            ("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
             self.ttft),
            ("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
             self.itl),
            ("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
             self.e2e),
        ):  # fmt: skip
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} histogram")
            out.extend(hist.render(name, labels))
        out.append("")
        return "\n".join(out).encode()
