"""Warm-up completions sent before the benchmark, so its first measured request is not the
one paying for cold paths (CUDA graph capture, allocator growth, tokenizer caches).

They are not measured into results; their latencies are only logged, because a warm-up that
takes seconds is itself a finding worth seeing in the step's log.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

import httpx

from steps.errors import BenchError
from steps.http_oneshot import LimitExceeded, OneShotClient
from steps.redact import redact_text

__all__ = ["WARMUP_MAX_TOKENS", "WARMUP_PROMPT", "run_warmup"]

log = logging.getLogger(__name__)

WARMUP_PROMPT = "Hello"
WARMUP_MAX_TOKENS = 8


def run_warmup(
    client: OneShotClient,
    model_name: str,
    count: int,
    request_timeout_s: float,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Send `count` small non-streamed completions one after another; return latencies in ms.

    Each is bounded by `request_timeout_s` of wall-clock time and the one-shot body cap.
    """
    body = {
        "model": model_name,
        "prompt": WARMUP_PROMPT,
        "max_tokens": WARMUP_MAX_TOKENS,
        "stream": False,
    }
    latencies_ms: list[float] = []
    for index in range(1, count + 1):
        start = clock()
        try:
            response = client.request(
                "POST", "/v1/completions", json_body=body, deadline_s=request_timeout_s
            )
        except (httpx.RequestError, LimitExceeded) as exc:
            raise BenchError(
                f"warm-up request {index}/{count} to {client.base_url}/v1/completions failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        elapsed_ms = (clock() - start) * 1000.0
        if not response.is_success:
            # The body is the server's text: scrub our own key in case it echoes the header.
            key = client.headers.get("Authorization", "").removeprefix("Bearer ")
            body_text = redact_text(response.text[:200], [key])
            raise BenchError(
                f"warm-up request {index}/{count} got HTTP {response.status_code} from "
                f"/v1/completions: {body_text!r}; the load step would fail the same way"
            )
        latencies_ms.append(elapsed_ms)
        log.info("warm-up %d/%d: %.1f ms", index, count, elapsed_ms)
    if latencies_ms:
        log.info(
            "warm-up done: %d requests, latency ms min %.1f / median %.1f / max %.1f",
            len(latencies_ms),
            min(latencies_ms),
            statistics.median(latencies_ms),
            max(latencies_ms),
        )
    return latencies_ms
