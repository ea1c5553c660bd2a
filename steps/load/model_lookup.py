"""The load step's one look at `GET /v1/models` before t0: which model to ask for, and whether
the requests fit in its context window.

`server.model_name` unset means "the first served id", as inference-perf does; set, it is looked
up for its `max_model_len` (vLLM's extension) so that `input + output` tokens longer than the
context fail here in one line, not as thousands of HTTP 400 rows. The lookup is a one-off
request, bounded in wall-clock time and body size like readiness' probes (`steps.http_oneshot`)
and with the load client's TLS context; when the name is set, a failed lookup only means the
check is skipped (the server may not list models; readiness has checked it anyway).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from steps.errors import BenchError, UsageError
from steps.http_oneshot import LimitExceeded, OneShotClient
from steps.load.config import Config
from steps.names import check_model_name
from steps.served_models import ServedModel, served_model

__all__ = ["LOOKUP_DEADLINE_S", "resolve_model"]

log = logging.getLogger(__name__)

#: Wall-clock bound of the lookup: a healthy server answers in milliseconds, and readiness has
#: already waited for it to come up.
LOOKUP_DEADLINE_S = 10.0


def _models_payload(config: Config, headers: dict[str, str]) -> Any:
    """The parsed `/v1/models` body; ValueError naming what went wrong."""
    client = OneShotClient(config.server.base_url.rstrip("/"), headers)
    try:
        reply = client.request("GET", "/v1/models", deadline_s=LOOKUP_DEADLINE_S)
    except (httpx.RequestError, LimitExceeded) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    if not reply.is_success:
        raise ValueError(f"HTTP {reply.status_code}")
    return reply.json()


def _check_fits(config: Config, entry: ServedModel | None, url: str) -> None:
    """Refuse requests longer than the served context window (when the server reports it)."""
    if entry is None or entry.max_model_len is None:
        log.info("%s: max_model_len not reported; request lengths not checked", url)
        return
    longest_in = config.data.input_distribution.max
    longest_out = config.data.output_distribution.max
    if longest_in + longest_out > entry.max_model_len:
        raise UsageError(
            f"data: prompts of up to {longest_in} tokens + {longest_out} output tokens exceed "
            f"max_model_len {entry.max_model_len} of {entry.id!r} at {url}; lower "
            "--input-tokens / --output-tokens"
        )


def resolve_model(config: Config, headers: dict[str, str]) -> str:
    """The model id to send; refuses a run whose longest request exceeds `max_model_len`."""
    url = config.server.base_url.rstrip("/") + "/v1/models"
    named = config.server.model_name
    try:
        payload = _models_payload(config, headers)
        entry, ids = served_model(payload, named or "")
    except ValueError as exc:  # transport, limits, status, JSON, shape
        if named is None:
            raise BenchError(
                f"server.model_name is unset and {url} gave no model id ({exc}); set --model-name"
            ) from None
        log.warning("%s: %s; max_model_len unknown, request lengths not checked", url, exc)
        return named
    if named is None:
        if not ids:
            raise BenchError(f"server.model_name is unset and {url} lists no model; set it")
        try:  # a server-controlled name becomes S3 keys and paths downstream
            named = check_model_name(ids[0])
        except ValueError as exc:
            raise BenchError(f"{url}: {exc}; set --model-name") from None
        entry, _ = served_model(payload, named)
        log.info("model from %s: %r", url, named)
    elif entry is None:
        log.warning("%s does not list %r (served: %s)", url, named, list(ids))
    _check_fits(config, entry, url)
    return named
