"""summary.json groups with exactly the numbers a test names (others: no data), typed."""

from __future__ import annotations

from typing import Any

from steps.summary_model import (
    LATENCY_METRICS,
    Group,
    LatencyMs,
    RequestCounts,
    StageGroup,
    Stats,
    Summary,
    Throughput,
    Tokens,
)

__all__ = ["group", "stage", "stats", "summary_json"]


def stats(p50: float | None = None, p99: float | None = None) -> Stats:
    """STATS with the given p50/p99 (ms); no data (count 0, nulls) when both are None."""
    known = [v for v in (p50, p99) if v is not None]
    return Stats(
        count=len(known),
        mean=None,
        min=min(known, default=None),
        max=max(known, default=None),
        std=None,
        p50=p50,
        p90=None,
        p95=None,
        p99=p99,
        p99_9=None,
    )


def group(
    *,
    error_rate: float | None = 0.0,
    output_tokens_per_s: float | None = None,
    goodput: float | None = None,
    **latency: Stats,
) -> Group:
    """An `overall` GROUP: the named latencies (`ttft=stats(50, 120)`), the others empty."""
    unknown = set(latency) - set(LATENCY_METRICS)
    assert not unknown, f"not a latency: {unknown}"
    empty = stats()
    return Group(
        requests=RequestCounts(
            total=0, ok=0, http_error=0, timeout=0, connect_error=0, protocol_error=0, cancelled=0
        ),
        success_rate=None if error_rate is None else 1.0 - error_rate,
        error_rate=error_rate,
        window_s=None,
        requested_rate=None,
        achieved_rate=None,
        throughput=Throughput(
            requests_per_s=None, input_tokens_per_s=None, output_tokens_per_s=output_tokens_per_s
        ),
        latency_ms=LatencyMs(**{name: latency.get(name, empty) for name in LATENCY_METRICS}),
        tokens=Tokens(
            prompt_tokens_source={},
            output_tokens_source={},
            output_token_mismatches=0,
            prompt_tokens_mean=None,
            output_tokens_mean=None,
        ),
        load_generator_saturated=False,
        goodput=goodput,
    )


def stage(
    index: int,
    rate: float,
    *,
    sent: float | None = None,
    client_limited: bool = False,
    error_rate: float | None = 0.0,
    **latency: Stats,
) -> StageGroup:
    """A stage GROUP asked for `rate`/s that sent `sent`/s (default: all of it), on schedule
    (schedule delay p50/p99 0.5/1 ms unless given)."""
    latency.setdefault("schedule_delay", stats(0.5, 1.0))
    fields = dict(group(error_rate=error_rate, output_tokens_per_s=None, goodput=None, **latency))
    fields |= {"achieved_rate": rate if sent is None else sent, "requested_rate": rate}
    fields["load_generator_saturated"] = client_limited
    return StageGroup(**fields, stage=index, rate=rate, duration_s=None)


def summary_json(run: dict[str, Any], overall: Group) -> str:
    """A summary.json text with `run` and `overall` (no stages)."""
    return Summary.model_validate({"run": run, "overall": overall, "stages": []}).to_json()
