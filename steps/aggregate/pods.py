"""Per-pod figures of a load spread over several pods (summary.json `run.pods`).

The merged statistics are those of one schedule; these say whether each pod kept its share of
it: its CPU per request, its schedule delay, its clock offset against the coordinator, and when
its first request actually went out. `start_spread_ms` is the spread of those first sends'
schedule delays across pods: how far apart the pods really began (each pod's first request is
due at a different instant, i/rate apart, so the delays are what compare).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from steps.aggregate.read import Shard
from steps.record_metrics import percentiles

__all__ = ["pod_figures"]

_NS_PER_MS = 1e6


def _ms(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value) / _NS_PER_MS, 4)


def pod_figures(shards: Sequence[Shard], requests: pd.DataFrame) -> dict[str, Any]:
    """{"pods": [one dict per shard], "start_spread_ms"}; `requests` carries the `shard` column
    and `schedule_delay` (ns) of steps.record_metrics.latencies_ns."""
    pods = []
    starts = []
    for index, shard in enumerate(shards):
        meta = shard.run_meta or {}
        rows = requests[requests["shard"] == index]
        sent = rows[rows["sent_ns"].notna()]
        delay = sent["schedule_delay"].to_numpy(dtype=np.float64)
        first = sent.sort_values("scheduled_ns").head(1)
        start = float(first["schedule_delay"].iloc[0]) if len(first) else None
        if start is not None:
            starts.append(start)
        p50, p99 = percentiles(delay, (50.0, 99.0)) if len(delay) else (np.nan, np.nan)
        cpu = meta.get("client_cpu_s")
        per_request = cpu / len(rows) * 1e3 if isinstance(cpu, float) and len(rows) else None
        pods.append(
            {
                "pod_index": meta.get("pod_index", index),
                "requests": len(rows),
                "client_cpu_s": cpu,
                "cpu_ms_per_request": None if per_request is None else round(per_request, 4),
                "setup_cpu_s": meta.get("setup_cpu_s"),
                "clock_offset_ms": _ms(meta.get("clock_offset_ns")),
                "clock_rtt_ms": _ms(meta.get("clock_rtt_ns")),
                "schedule_delay_p50_ms": _ms(p50),
                "schedule_delay_p99_ms": _ms(p99),
                "start_delay_ms": _ms(start),
            }
        )
    spread = _ms(max(starts) - min(starts)) if starts else None
    return {"pods": pods, "start_spread_ms": spread}
