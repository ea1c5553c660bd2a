"""Poll an OpenAI-compatible endpoint until it is healthy and serves the model.

Why a step of its own: a benchmark started against a half-loaded vLLM (weights still loading,
`/health` 503) or against the wrong model measures nothing useful, and the load step must not
burn its send window finding that out. Waiting is bounded by a deadline, with polls that start
fast (a server that is already up costs ~0 s) and back off to `interval_s` so a 10-minute model
load is not hammered. Each probe is itself bounded in wall-clock time and body size
(`steps.http_oneshot`), and never outlives the overall deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from steps.errors import BenchError
from steps.http_oneshot import LimitExceeded, OneShotClient
from steps.served_models import ServedModel, served_model

__all__ = ["WaitResult", "check_once", "poll_delays", "wait_ready"]

log = logging.getLogger(__name__)

#: First poll gap as a fraction of the interval: the backoff doubles from here up to the interval.
_FIRST_GAP_FRACTION = 1 / 8
#: Upper bound of one HTTP request, so a hung connection cannot eat the whole deadline.
_MAX_REQUEST_TIMEOUT_S = 10.0
#: Shortest probe worth making: a probe starts at least this long before the deadline (the gap
#: before it is cut to leave that), so it fits inside; with less left, no probe starts.
_MIN_REQUEST_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class WaitResult:
    """What one probe found: the model when ready, else why not (one phrase) and what is served."""

    model: ServedModel | None
    missing: str
    served: tuple[str, ...] = ()


def poll_delays(interval_s: float) -> Iterator[float]:
    """Seconds to sleep between polls: interval/8, doubling, capped at `interval_s`."""
    delay = interval_s * _FIRST_GAP_FRACTION
    while True:
        yield min(delay, interval_s)
        delay *= 2


def _describe_request_error(path: str, exc: httpx.RequestError | LimitExceeded) -> str:
    if isinstance(exc, LimitExceeded):
        return f"{path}: {exc}"
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "no answer"
    detail = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        # Often fixed on the client side (a private CA): say which knob that is.
        return (
            f"{path}: TLS certificate rejected ({detail}); if a private CA signed it, set "
            "SSL_CERT_FILE to that CA's PEM (Argo: --ca-bundle-configmap)"
        )
    return f"{path}: {kind} ({detail})"


def check_once(client: OneShotClient, model_name: str, deadline_s: float) -> WaitResult:
    """One probe of `/health` then `/v1/models`, both within `deadline_s` of wall-clock time;
    never raises for an unready server."""
    start = time.monotonic()
    for path in ("/health", "/v1/models"):
        remaining = max(deadline_s - (time.monotonic() - start), 0.0)
        try:
            response = client.request("GET", path, deadline_s=remaining)
        except (httpx.RequestError, LimitExceeded) as exc:
            return WaitResult(None, _describe_request_error(path, exc))
        if response.status_code in (401, 403):
            # Waiting cannot fix a rejected key, but the caller decides; say it plainly.
            return WaitResult(
                None, f"{path}: HTTP {response.status_code} (check the API key / --api-key-env)"
            )
        if not response.is_success:
            return WaitResult(None, f"{path}: HTTP {response.status_code}")
    try:
        model, served = served_model(response.json(), model_name)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return WaitResult(None, f"/v1/models: unexpected body ({exc})")
    if model is None:
        return WaitResult(None, f"model {model_name!r} not in /v1/models", served)
    return WaitResult(model, "", served)


def wait_ready(
    client: OneShotClient,
    model_name: str,
    timeout_s: float,
    interval_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ServedModel:
    """Poll until the model is served; raise BenchError naming what was missing at the deadline."""
    start = clock()
    deadline = start + timeout_s
    delays = poll_delays(interval_s)
    attempt = 0
    last_missing = ""
    while True:
        attempt += 1
        probe_s = min(_MAX_REQUEST_TIMEOUT_S, max(deadline - clock(), 0.0))
        result = check_once(client, model_name, probe_s)
        if result.model is not None:
            log.info(
                "ready after %.1f s (%d checks): model %r served, max_model_len=%s",
                clock() - start,
                attempt,
                result.model.id,
                result.model.max_model_len,
            )
            return result.model
        if result.served and result.missing != last_missing:
            # Said once, early: a wrong --model-name is the common mistake and the wait is long.
            log.warning("%s; served: %s", result.missing, list(result.served))
        last_missing = result.missing
        remaining = deadline - clock()
        if remaining < _MIN_REQUEST_TIMEOUT_S:
            # Too little left for a probe worth making: wait out the timeout; the last answer holds.
            sleep(max(remaining, 0.0))
            served = f" (served: {list(result.served)})" if result.served else ""
            hint = "check --model-name" if result.served else "check --base-url and the server logs"
            raise BenchError(
                f"{client.base_url} not ready after {timeout_s:g} s ({attempt} checks): "
                f"{result.missing}{served}; {hint}"
            )
        delay = min(next(delays), remaining - _MIN_REQUEST_TIMEOUT_S)
        log.info(
            "waiting: %s (%.0f s elapsed of %g s, next check in %.1f s)",
            result.missing,
            clock() - start,
            timeout_s,
            delay,
        )
        sleep(delay)
