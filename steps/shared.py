"""The ground floor every step and `workflows/` share: names and bounds, no behaviour.

Why one module: the workflow renders flags for the steps and validates its knobs exactly as the
steps will (same enums, same caps, same label syntax), and the steps must not import one another
(`steps/CONTRACTS.md`, "Layers"). Validation of user-supplied names lives in `steps.names`; this
module holds the vocabulary: the strict config base model, API and load types, the size and
time caps of one run, and the Kubernetes names the readiness step and the template agree on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from steps.errors import UsageError

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT_S",
    "LADDER_MAX_RUNGS",
    "LADDER_REQUESTS_PER_USER",
    "MAX_REQUESTS",
    "MAX_REQUEST_SECONDS",
    "MAX_RUN_PROMPT_TOKENS",
    "MAX_SECONDS",
    "MAX_STAGES",
    "MAX_TOKENS_PER_REQUEST",
    "MAX_WORKERS",
    "ZONE_LABEL",
    "APIType",
    "K8sCheck",
    "LoadType",
    "NumWorkers",
    "RequestTimeout",
    "StrictModel",
    "SweepEstimator",
    "SweepNumRequests",
    "SweepNumStages",
    "SweepPercentile",
    "SweepStageDuration",
    "SweepType",
    "Switch",
    "ZoneAffinity",
    "check_load_size",
    "format_label_selector",
    "parse_label_selector",
]

# Bounds on what one run may ask for. Without them a typo passes validation and dies later in a
# traceback or the kernel's OOM killer (`duration 1e12`: MemoryError building the schedule;
# `input_tokens 10^7`: 4.7 GB in the tokenizer, then an abort in Rust).

#: Requests (all stages plus warm-up) one run may schedule. Each is a prebuilt body before t0 and
#: a row of records.parquet; the aggregate benchmark measured 1,000,000 rows x 128 chunks at
#: 1.1 GiB peak RSS, the largest size this project has measured end to end.
MAX_REQUESTS = 1_000_000
#: Tokens in one prompt or one response. The longest context windows served today are about 2^20
#: tokens; nothing larger is a request a server accepts.
MAX_TOKENS_PER_REQUEST = 1 << 20
#: Prompt tokens of a whole run. Every prompt is built before t0 and held as text (~4 bytes per
#: token) in the main process and again in its worker: 2^28 tokens is ~1 GiB of text, ~2-3 GiB
#: resident, inside the load pod's 8 GiB memory limit with room for the records.
MAX_RUN_PROMPT_TOKENS = 1 << 28
#: Any duration or timeout, in seconds: no step runs for a week, and far larger values overflow
#: the nanosecond deadlines and timers they become (`time.sleep(1e300)` raises OverflowError).
MAX_SECONDS = 7 * 24 * 3600.0
#: request_timeout, in seconds: a request must end before its chunk arrival offsets
#: (records.chunk_offsets_us, int32 µs since sent_ns) overflow at 2^31 µs = 35.8 min. Past that a
#: legitimate long stream would be a protocol_error blaming the server, and the column may not be
#: retyped (steps/CONTRACTS.md). 35 min leaves 47 s for a late timer. drain_timeout has the same
#: cap: a drain longer than request_timeout changes nothing (request_timeout ends every request).
MAX_REQUEST_SECONDS = 35 * 60.0
#: `drain_timeout`'s default: seconds after each stage's send window its in-flight requests may
#: still finish (the load step's config default, and the workflow's knob default, which the load
#: pod's time budget sums once per stage).
DEFAULT_DRAIN_TIMEOUT_S = 120
#: Stages of one run. `stage` is int16 in the records (32767 at most); 1000 is already far more
#: than a sweep anyone reads (each stage is a summary group, a report row and a plot point) and
#: each stage costs a barrier across the workers.
MAX_STAGES = 1000
#: Load-generator processes of one run. Each is a Python process with its own event loop, its
#: own tokenizer and its share of the prebuilt bodies, on one pod with a few CPUs: far fewer are
#: ever useful, and the cap turns a typo (`num_workers: 4000`) into a config error, not a fork
#: storm.
MAX_WORKERS = 256

# Knobs that both the load step's config (`load.*`) and the workflow's parameters declare: one
# bound each, so the workflow refuses exactly what the load step would. Each model keeps its own
# default and description (the workflow's are the Argo UI form's wording).

#: `request_timeout`: seconds one whole request (streaming included) may take.
RequestTimeout = Annotated[float, Field(gt=0, le=MAX_REQUEST_SECONDS)]
#: `num_workers`: load-generator processes.
NumWorkers = Annotated[int, Field(ge=1, le=MAX_WORKERS)]
#: The sweep probe's `load.sweep` fields (workflow knobs `sweep_<field>`): requests it may send,
#: stages it generates, each one's whole seconds, the burst's percentile of its drain rates.
SweepNumRequests = Annotated[int, Field(ge=2, le=MAX_REQUESTS)]
SweepNumStages = Annotated[int, Field(ge=1, le=MAX_STAGES)]
SweepStageDuration = Annotated[int, Field(ge=1, le=MAX_SECONDS)]
SweepPercentile = Annotated[float, Field(gt=0, le=100)]


def check_load_size(
    windows: Iterable[tuple[float, float]],
    warmup_requests: int,
    max_input_tokens: int,
    *,
    stages_field: str,
    input_field: str,
) -> None:
    """Refuse a run larger than the bounds above; the message names the knobs to change.

    `windows` are (rate, duration) pairs; the request count is their expected total (a poisson
    stage's exact count is random, within a few standard deviations of it).
    """
    requests = math.fsum(rate * duration for rate, duration in windows) + warmup_requests
    if not requests <= MAX_REQUESTS:
        raise ValueError(
            f"{stages_field}: asks for {requests:.4g} requests (rate x duration + warm-up), "
            f"more than the {MAX_REQUESTS:,} one run may schedule; split it into several runs"
        )
    tokens = math.ceil(requests) * max_input_tokens
    if tokens > MAX_RUN_PROMPT_TOKENS:
        raise ValueError(
            f"{input_field}: {math.ceil(requests):,} prompts of up to {max_input_tokens:,} tokens "
            f"are {tokens:.3g} prompt tokens, more than the {MAX_RUN_PROMPT_TOKENS:,} one run "
            "may build in memory before t0"
        )


def _is_number_type(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return any(_is_number_type(arg) for arg in get_args(annotation))


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable once loaded,
    numbers are finite (`inf`, `nan` are refused) and never booleans (`rate: true` is a typo,
    not 1 request per second)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=False, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_number_type(field.annotation):
            raise ValueError("must be a number, not a boolean")
        return value


class APIType(StrEnum):
    completion = "completion"
    chat = "chat"


class LoadType(StrEnum):
    constant = "constant"
    poisson = "poisson"


class SweepType(StrEnum):
    """How a sweep spaces its stages from 1/s to the saturation rate (inference-perf's)."""

    linear = "linear"
    geometric = "geometric"


class SweepEstimator(StrEnum):
    """How the sweep probe finds the saturation rate: `ladder` (closed-loop users doubled until
    throughput stops growing) or `burst` (inference-perf's burst-and-drain)."""

    ladder = "ladder"
    burst = "burst"


#: Requests per user in one rung of the probe's ladder, and the most rungs it climbs (users 1,
#: 2, ..., 2^11): with every request bounded by the sweep's `timeout`, the probe ends within
#: LADDER_MAX_RUNGS x LADDER_REQUESTS_PER_USER x timeout, the bound the workflow's probe
#: deadline is built from.
LADDER_REQUESTS_PER_USER = 6
LADDER_MAX_RUNGS = 12


class Switch(StrEnum):
    """A feature switch as a flag and a workflow parameter take it (`--early-stop on|off`)."""

    on = "on"
    off = "off"


#: The well-known node label the load step's podAffinity uses as topologyKey.
ZONE_LABEL = "topology.kubernetes.io/zone"

# Kubernetes label syntax (k8s.io/apimachinery validation): optional DNS-subdomain prefix + "/",
# a name of at most 63 characters; values at most 63 characters, possibly empty.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")


class K8sCheck(StrEnum):
    """`auto`: run when credentials exist, else log that it was skipped; `required`: fail
    without credentials; `off`: never."""

    auto = "auto"
    off = "off"
    required = "required"


class ZoneAffinity(StrEnum):
    """How the load pod follows the model pods' zone (an install option of the template):
    `required` (the guide's rule: never elsewhere), `preferred` (weight 100: same zone when the
    scheduler can), `off` (no affinity)."""

    required = "required"
    preferred = "preferred"
    off = "off"


def parse_label_selector(text: str) -> dict[str, str]:
    """Parse `k=v,k2=v2` (equality only, as podAffinity matchLabels) into a dict."""
    labels: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or value.startswith("="):
            raise UsageError(
                f"--target-labels: {item!r} is not key=value (expected e.g. "
                "'app.kubernetes.io/component=qwen3-vllm,tier=model')"
            )
        if not _KEY_RE.match(key) or len(key.rpartition("/")[2]) > 63:
            raise UsageError(f"--target-labels: {key!r} is not a valid Kubernetes label key")
        if not _VALUE_RE.match(value):
            raise UsageError(
                f"--target-labels: value {value!r} of {key!r} is not a valid Kubernetes label value"
            )
        if key in labels and labels[key] != value:
            raise UsageError(f"--target-labels: {key!r} given twice with different values")
        labels[key] = value
    return labels


def format_label_selector(labels: Mapping[str, str]) -> str:
    """The API's `labelSelector` query string for equality labels."""
    return ",".join(f"{k}={v}" for k, v in labels.items())
