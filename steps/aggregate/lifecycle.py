"""inference-perf's `*_lifecycle_metrics.json` layout, so existing analysis scripts keep working.

Key names, percentile keys (`p0.1` .. `p99.9`, 50 as `median`) and seconds as the unit follow
inference-perf's `reportgen/base.py` (see ../shared/reference/inference-perf.md §7-8). The
numbers are ours: `request_latency` of successes is our e2e (last content chunk - send),
`time_per_output_token`/`normalized_time_per_output_token` are our TPOT/NTPOT, ITL is pooled per
chunk gap (never re-expanded per token), `schedule_delay` and `achieved_rate` use the stage's
send window from run.json. Fields we cannot know (images, cached prompt tokens) are left out.
"""

from __future__ import annotations

from typing import Any

from steps.aggregate.metrics import PERCENTILES, Distribution
from steps.aggregate.summary import GroupMetrics

__all__ = ["lifecycle_json"]

_NS_PER_S = 1e9


def _percentile_key(q: float) -> str:
    return "median" if q == 50.0 else f"p{q:g}"


def _block(distribution: Distribution, divisor: float = 1.0) -> dict[str, float | None]:
    """inference-perf's percentile block {mean, min, max, p0.1, ..., median, ..., p99.9}."""
    scaled = distribution.divided(divisor)
    block = {"mean": scaled.mean, "min": scaled.min, "max": scaled.max}
    return block | {_percentile_key(q): scaled.percentiles[q] for q in PERCENTILES}


def _prompt_tokens(group: GroupMetrics) -> dict[str, Any]:
    """inference-perf's `prompt_tokens` block: total, cached, uncached and the percentiles;
    cached/uncached null when no server said how many prompt tokens its prefix cache served."""
    cached = group.cached_tokens
    cached_total = round(cached.mean * cached.count) if cached.mean is not None else None
    return {
        "total": group.prompt_tokens_total,
        "cached": cached_total,
        "uncached": None if cached_total is None else group.prompt_tokens_total - cached_total,
    } | _block(group.prompt_tokens)


def lifecycle_json(group: GroupMetrics) -> dict[str, Any]:
    """One `summary_`/`stage_N_lifecycle_metrics.json` document (seconds)."""
    latency = group.latency_ns
    ok = group.counts["ok"]
    input_per_s = group.per_second(group.prompt_tokens_total)
    output_per_s = group.per_second(group.output_tokens_total)
    total_per_s = group.per_second(group.prompt_tokens_total + group.output_tokens_total)
    return {
        "benchmark_time_seconds": group.window_s,
        "load_summary": {
            "count": group.counts["total"],
            "schedule_delay": _block(latency["schedule_delay"], _NS_PER_S),
            "send_duration": group.send_window_s,
            "requested_rate": group.requested_rate,
            "achieved_rate": group.achieved_rate,
            # inference-perf adds it to concurrent stages: the users asked for
            **({} if group.concurrency is None else {"concurrency": group.concurrency[0]}),
        },
        "successes": {
            "count": ok,
            "latency": {
                "request_latency": _block(latency["e2e"], _NS_PER_S),
                "normalized_time_per_output_token": _block(latency["ntpot"], _NS_PER_S),
                "time_per_output_token": _block(latency["tpot"], _NS_PER_S),
                "time_to_first_token": _block(latency["ttft"], _NS_PER_S),
                "inter_token_latency": _block(latency["itl"], _NS_PER_S),
            },
            "throughput": {
                "input_tokens_per_sec": input_per_s,
                "output_tokens_per_sec": output_per_s,
                "total_tokens_per_sec": total_per_s,
                "requests_per_sec": group.per_second(ok),
            },
            "prompt_tokens": _prompt_tokens(group),
            "output_len": _block(group.output_tokens),
            "output_tokens": {"total": group.output_tokens_total} | _block(group.output_tokens),
            "token_count_mismatches": group.output_token_mismatches,
        },
        "failures": {
            "count": group.counts["total"] - ok,
            "request_latency": _block(group.failure_latency_ns, _NS_PER_S),
            "by_label": {
                label: {
                    "count": count,
                    "messages": [{"message": m, "count": n} for m, n in messages.items()],
                }
                for label, (count, messages) in group.failures_by_label.items()
            },
        },
    }
