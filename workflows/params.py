"""The benchmark's knobs: one pydantic model, one name per knob.

A field here is, under the same name, a workflow parameter of the WorkflowTemplate (the Argo UI
form), a `--flag` of `python -m workflows.baseline` (underscores become dashes) and the step flag it
feeds. Defaults are the seed's baseline scenario (AI on EKS guide, scenario 1). Argo parameters are
strings, so `to_arguments` renders every value as text and an unset optional threshold as "" (the
step CLIs read "" as unset, see steps/CONTRACTS.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from steps.config import APIType, LoadType
from steps.errors import UsageError
from steps.readiness.zones import K8sCheck, parse_label_selector

__all__ = [
    "BaselineParams",
    "params_from_mapping",
]


class BaselineParams(BaseModel):
    """Every knob the Argo UI, the CLI and the cron run may set; defaults = the seed baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        default="http://qwen3-vllm.default:8000",
        pattern=r"^https?://[^\s/]+",
        description="OpenAI-compatible server root of the model under test",
    )
    model_name: str = Field(
        default="qwen3-8b",
        min_length=1,
        description="model id sent in requests (as /v1/models lists it)",
    )
    tokenizer: str = Field(
        default="Qwen/Qwen3-8B",
        min_length=1,
        description="Hugging Face repo id, local directory, or offline:qwen (built in, no network)",
    )
    api_type: APIType = Field(default=APIType.completion, description="completion or chat endpoint")
    load_type: LoadType = Field(
        default=LoadType.constant,
        description="constant: sends evenly spaced at t0 + i/rate; poisson: seeded random gaps",
    )
    rate: float = Field(default=1.0, gt=0, description="requests per second")
    duration: int = Field(default=300, ge=1, description="send window in seconds")
    input_tokens: int = Field(default=512, ge=1, description="prompt length in tokens (exact)")
    output_tokens: int = Field(
        default=128, ge=1, description="max_tokens per request (exact, ignore_eos)"
    )
    num_workers: int = Field(default=4, ge=1, le=256, description="load-generator processes")
    seed: int = Field(default=0, ge=0, description="seeds arrivals and prompt contents")
    warmup_requests: int = Field(default=0, ge=0, description="unrecorded requests before the run")
    request_timeout: float = Field(default=600, gt=0, description="seconds one request may take")
    readiness_timeout: int = Field(
        default=600, gt=0, description="seconds to wait for /health and the model in /v1/models"
    )
    target_labels: str = Field(
        default="app.kubernetes.io/component=qwen3-vllm",
        description=(
            "label selector k=v[,k2=v2] of the model pods: the load pod's required zone affinity "
            "(fixed when the template is installed) and the readiness zone check"
        ),
    )
    k8s_check: K8sCheck = Field(
        default=K8sCheck.auto,
        description="readiness: check the model pods and zones via the Kubernetes API (auto: "
        "when credentials exist)",
    )
    target_namespace: str = Field(
        default="default",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="namespace of the model pods (affinity namespaces, readiness check)",
    )
    bucket: str = Field(
        default="inference-perf-results",
        pattern=r"^$|^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$",
        description="S3 bucket for results; empty = no upload",
    )
    path: str = Field(default="baseline-test/results", description="key prefix inside the bucket")
    s3_endpoint_url: str = Field(
        default="", description="S3-compatible endpoint URL; empty = AWS S3"
    )
    sla_ttft_p50_ms: float | None = Field(
        default=None, gt=0, description="TTFT p50 limit (ms); empty = none"
    )
    sla_ttft_p99_ms: float | None = Field(
        default=None, gt=0, description="TTFT p99 limit (ms); empty = none"
    )
    sla_itl_p50_ms: float | None = Field(
        default=None, gt=0, description="ITL p50 limit (ms); empty = none"
    )
    sla_itl_p99_ms: float | None = Field(
        default=None, gt=0, description="ITL p99 limit (ms); empty = none"
    )
    sla_e2e_p99_ms: float | None = Field(
        default=None, gt=0, description="e2e p99 limit (ms); empty = none"
    )
    sla_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="largest failed-request fraction; empty = none"
    )
    sla_schedule_delay_p99_ms: float = Field(
        default=10,
        gt=0,
        description="schedule delay p99 limit (ms): above it the load generator lagged",
    )
    regression_tolerance: float = Field(
        default=0.10, ge=0, description="allowed relative slowdown against the previous run"
    )
    fail_on_breach: bool = Field(
        default=False, description="fail the run (exit 3) on an SLA or regression breach"
    )

    @field_validator("target_labels")
    @classmethod
    def _selector_parses(cls, value: str) -> str:
        # An empty matchLabels would match every pod: the affinity would pin nothing.
        if not parse_label_selector(value):
            raise ValueError("needs at least one key=value label of the model pods")
        return value

    @field_validator(
        "sla_ttft_p50_ms",
        "sla_ttft_p99_ms",
        "sla_itl_p50_ms",
        "sla_itl_p99_ms",
        "sla_e2e_p99_ms",
        "sla_error_rate",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Argo parameters are strings; the UI leaves an optional threshold as "".
        return None if value == "" else value

    @property
    def target_match_labels(self) -> dict[str, str]:
        """The target selector as a matchLabels map."""
        return parse_label_selector(self.target_labels)

    def to_arguments(self) -> dict[str, str]:
        """Every knob as an Argo parameter string, in declaration order."""
        return {name: _argo_text(getattr(self, name)) for name in type(self).model_fields}

    @classmethod
    def enums(cls) -> dict[str, list[str]]:
        """Closed value sets, shown as dropdowns in the Argo UI."""
        out: dict[str, list[str]] = {}
        for name, field in cls.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, StrEnum):
                out[name] = [member.value for member in field.annotation]
            elif field.annotation is bool:
                out[name] = ["true", "false"]
        return out

    @classmethod
    def descriptions(cls) -> dict[str, str]:
        """Each knob's help text (Argo parameter description and `--help`)."""
        return {name: field.description or "" for name, field in cls.model_fields.items()}


def _argo_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def params_from_mapping(values: dict[str, Any], source: str) -> BaselineParams:
    """Validate knob values (flags, chart values, Argo strings); errors name the knob."""
    try:
        return BaselineParams.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(part) for part in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            raise UsageError(f"{source}: unknown parameter '{name}'") from None
        seen = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")
        raise UsageError(f"{source}: {name}: {msg} (got {seen!r})") from None
