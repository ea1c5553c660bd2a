"""The benchmark's knobs: one pydantic model, one name per knob.

A field here is, under the same name, a workflow parameter of the WorkflowTemplate (the Argo UI
form), a `--flag` of `python -m workflows.baseline` (underscores become dashes) and the step flag it
feeds. Defaults are the seed's baseline scenario (AI on EKS guide, scenario 1). Argo parameters are
strings, so `to_arguments` renders every value as text and an unset optional threshold as "" (the
step CLIs read "" as unset, see steps/CONTRACTS.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from steps.errors import UsageError
from steps.names import (
    BUCKET_NAME_PATTERN,
    check_base_url,
    check_endpoint_url,
    check_model_name,
    check_scenario_name,
    echo_input,
)
from steps.shared import (
    DEFAULT_DRAIN_TIMEOUT_S,
    MAX_REQUEST_SECONDS,
    MAX_SECONDS,
    MAX_TOKENS_PER_REQUEST,
    APIType,
    K8sCheck,
    LoadType,
    NumWorkers,
    RequestTimeout,
    StrictModel,
    SweepEstimator,
    SweepNumRequests,
    SweepNumStages,
    SweepPercentile,
    SweepStageDuration,
    SweepType,
    Switch,
    check_load_size,
    parse_label_selector,
)
from steps.stage_spec import STAGES_FORMAT, parse_stages
from workflows.options import K8S_NAME_PATTERN
from workflows.scenarios import (
    SCENARIOS,
    ScenarioName,
    config_defaults,
    packaged_defaults,
)

#: The config text's size cap: it is a parameter of every Workflow object (etcd holds an
#: object up to 1.5 MiB) and is shown in the Argo UI's form; real configs are a few KiB.
MAX_CONFIG_CHARS = 256 * 1024

__all__ = [
    "MAX_CONFIG_CHARS",
    "BaselineParams",
    "params_from_mapping",
]


class BaselineParams(StrictModel):
    """Every knob the Argo UI, the CLI and the cron run may set; defaults = the seed baseline.

    The same checks as the steps' (StrictModel: finite numbers, no booleans for numbers; the
    shared name and size checks), so `render`, `install`, `submit` and `run` refuse what the
    steps would refuse, before anything is rendered or started.
    """

    base_url: str = Field(
        default="http://qwen3-vllm.default:8000",
        description="OpenAI-compatible server root of the model under test",
    )
    model_name: str = Field(
        default="qwen3-8b",
        description="model id sent in requests (as /v1/models lists it)",
    )
    tokenizer: str = Field(
        default="Qwen/Qwen3-8B",
        min_length=1,
        description="Hugging Face repo id, local directory, or offline:qwen (built in, no network)",
    )
    # The config scenario: a user's own inference-perf config.yml, carried whole as text.
    config: str | None = Field(
        default=None,
        max_length=MAX_CONFIG_CHARS,
        description="inference-perf config.yml (its text; the CLI's --config FILE reads it); "
        "stages, drain_timeout, base_url, model_name and tokenizer win over its own",
    )
    config_name: str | None = Field(
        default=None,
        description="name the config's runs are kept and compared under (default: its file name)",
    )
    api_type: APIType = Field(default=APIType.completion, description="completion or chat endpoint")
    load_type: LoadType = Field(
        default=LoadType.constant,
        description="constant: sends evenly spaced at t0 + i/rate; poisson: seeded random gaps",
    )
    rate: float = Field(default=1.0, gt=0, description="requests per second")
    duration: int = Field(default=300, ge=1, le=MAX_SECONDS, description="send window in seconds")
    input_tokens: int = Field(
        default=512, ge=1, le=MAX_TOKENS_PER_REQUEST, description="prompt length in tokens (exact)"
    )
    output_tokens: int = Field(
        default=128,
        ge=1,
        le=MAX_TOKENS_PER_REQUEST,
        description="max_tokens per request (exact, ignore_eos)",
    )
    # A staged scenario's load (workflows.scenarios.STAGED_KNOBS); defaults from its packaged
    # config, None for the baseline, which has none of them.
    stages: str | None = Field(
        default=None,
        description=f"stages run back to back, {STAGES_FORMAT}: requests/s x seconds",
    )
    input_mean: float | None = Field(default=None, gt=0, description="prompt length: mean (tokens)")
    input_std_dev: float | None = Field(
        default=None, ge=0, description="prompt length: standard deviation (tokens)"
    )
    input_min: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS_PER_REQUEST, description="prompt length: min (tokens)"
    )
    input_max: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS_PER_REQUEST, description="prompt length: max (tokens)"
    )
    output_mean: float | None = Field(
        default=None, gt=0, description="max_tokens: mean (tokens, ignore_eos)"
    )
    output_std_dev: float | None = Field(
        default=None, ge=0, description="max_tokens: standard deviation (tokens)"
    )
    output_min: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS_PER_REQUEST, description="max_tokens: min (tokens)"
    )
    output_max: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS_PER_REQUEST, description="max_tokens: max (tokens)"
    )
    # A real-data scenario's conversations (workflows.scenarios.DATASET_KNOBS): the dataset step.
    dataset: str | None = Field(
        default=None,
        min_length=1,
        description="conversations: local path, s3://bucket/key or Hugging Face dataset repo id",
    )
    dataset_file: str | None = Field(
        default=None, min_length=1, description="the file inside a Hugging Face dataset repo"
    )
    # The sweep scenario's probe (workflows.scenarios.SWEEP_KNOBS: the load step's load.sweep);
    # defaults are inference-perf's, the packaged sweep config's.
    sweep_type: SweepType = Field(
        default=SweepType.geometric,
        description="sweep stages from 1/s up to saturation: linear, or geometric (near it)",
    )
    sweep_num_requests: SweepNumRequests = Field(
        default=2000, description="probe requests (burst: sent in 5 s; ladder: over all its rungs)"
    )
    sweep_timeout: int = Field(
        default=60,
        ge=1,
        le=int(MAX_REQUEST_SECONDS),
        description="probe: seconds the burst's drain is watched; most one ladder request takes",
    )
    sweep_num_stages: SweepNumStages = Field(default=5, description="stages generated")
    sweep_stage_duration: SweepStageDuration = Field(
        default=180, description="seconds of each generated stage"
    )
    sweep_saturation_percentile: SweepPercentile = Field(
        default=95, description="burst: percentile of the drain rates taken"
    )
    sweep_estimator: SweepEstimator = Field(
        default=SweepEstimator.ladder,
        description="ladder: closed-loop users doubled until throughput stops growing; burst: "
        "inference-perf's burst-and-drain (biased high)",
    )
    num_workers: NumWorkers = Field(default=4, description="load-generator processes")
    seed: int = Field(default=0, ge=0, description="seeds arrivals and prompt contents")
    warmup_requests: int = Field(default=0, ge=0, description="unrecorded requests before the run")
    request_timeout: RequestTimeout = Field(default=600, description="seconds one request may take")
    early_stop: Switch = Field(
        default=Switch.off,
        description="skip the remaining stages once one saturates (errors > 1 %, sends < 95 % "
        "of the rate, TTFT p99 2x the lowest stage's, or the limit below)",
    )
    early_stop_ttft_p99_ms: float | None = Field(
        default=None, gt=0, description="early stop also once a stage's TTFT p99 is above this"
    )
    drain_timeout: int = Field(
        default=DEFAULT_DRAIN_TIMEOUT_S,
        ge=0,
        le=int(MAX_REQUEST_SECONDS),
        description="seconds after each stage's send window its requests may still finish",
    )
    server_metrics_interval: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="seconds between scrapes of the model server's /metrics during the load "
        "(every Ready model pod in the cluster); 0 = off",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="port of the model pods' /metrics; empty = the base URL's port",
    )
    readiness_timeout: int = Field(
        default=600,
        gt=0,
        le=MAX_SECONDS,
        description="seconds to wait for /health and the model in /v1/models",
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
        pattern=K8S_NAME_PATTERN,
        description="namespace of the model pods (affinity namespaces, readiness check)",
    )
    bucket: str = Field(
        default="inference-perf-results",
        pattern=f"^$|{BUCKET_NAME_PATTERN}",
        description="S3 bucket for results; empty = no upload",
    )
    path: str = Field(default="baseline-test/results", description="key prefix inside the bucket")
    s3_endpoint_url: str = Field(
        default="", description="S3-compatible endpoint URL; empty = AWS S3"
    )
    # The per-request SLO (aggregate): a request meeting every bound counts toward goodput and
    # SLO attainment; with no bound both are null and their SLA limits can never pass.
    slo_ttft_ms: float | None = Field(
        default=None, gt=0, description="SLO: time to first token at most this (ms); empty = none"
    )
    slo_tpot_ms: float | None = Field(
        default=None, gt=0, description="SLO: time per output token at most this (ms); empty = none"
    )
    slo_e2e_ms: float | None = Field(
        default=None, gt=0, description="SLO: end-to-end latency at most this (ms); empty = none"
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
        # As the report's own default: a nightly run with failed requests is not green.
        default=0.01,
        ge=0,
        le=1,
        description="largest failed-request fraction (default 0.01); empty = no limit",
    )
    sla_schedule_delay_p99_ms: float = Field(
        default=10,
        gt=0,
        description="schedule delay p99 limit (ms): above it the load generator lagged",
    )
    sla_goodput_rps: float | None = Field(
        default=None,
        gt=0,
        description="lowest goodput (requests/s meeting every SLO bound); empty = none",
    )
    sla_slo_attainment: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="lowest fraction of requests meeting every SLO bound; empty = none",
    )
    regression_tolerance: float | None = Field(
        # Empty: the report's per-metric defaults (medians and rates 5 %, p99s 15 %), which a
        # single number here would override: at 0.10 a +10 % median ITL is never flagged.
        default=None,
        ge=0,
        description="practical threshold for every relative metric (e.g. 0.05); "
        "empty = per-metric defaults",
    )
    history_window: int | None = Field(
        default=None,
        ge=1,
        description="earlier runs the report judges this one against; empty = 10",
    )
    fail_on_breach: bool = Field(
        default=False, description="fail the run (exit 3) on an SLA or regression breach"
    )
    # Not a workflow parameter: each scenario is its own WorkflowTemplate (workflows.scenarios).
    scenario: ScenarioName = Field(
        default=ScenarioName.baseline,
        description="which scenario's WorkflowTemplate: "
        + "; ".join(f"{s.name.value}: {s.description}" for s in SCENARIOS.values()),
    )

    @model_validator(mode="before")
    @classmethod
    def _scenario_knobs(cls, data: Any) -> Any:
        """The scenario's own defaults under the given values; a knob the scenario does not
        have is refused (it would be silently ignored)."""
        if not isinstance(data, dict):
            return data
        try:
            scenario = SCENARIOS[ScenarioName(data.get("scenario", ScenarioName.baseline))]
        except ValueError:
            return data  # the field's own check names the allowed scenarios
        foreign = [
            k for k in data if k in cls.model_fields and k != "scenario" and not scenario.has(k)
        ]
        if foreign:
            raise ValueError(
                f"{', '.join(foreign)}: not a knob of scenario {scenario.name.value} (its own: "
                f"{', '.join(scenario.own_knobs)})"
            )
        if scenario.staged:
            return {**packaged_defaults(scenario.name), **data}
        if scenario.name is ScenarioName.config:
            if not isinstance(data.get("config"), str):
                raise ValueError("config: the config scenario needs its config (--config FILE)")
            try:
                return {**config_defaults(data["config"]), "config_name": "config", **data}
            except ValueError as exc:
                raise ValueError(f"config: {exc}") from None
        return data

    _base_url_ok = field_validator("base_url")(check_base_url)
    _model_name_ok = field_validator("model_name")(check_model_name)

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint_ok(cls, value: str) -> str:
        return check_endpoint_url(value) if value else value

    @field_validator("config_name")
    @classmethod
    def _config_name_ok(cls, value: str | None) -> str | None:
        return None if value is None else check_scenario_name(value)

    @field_validator("stages")
    @classmethod
    def _stages_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_stages(value)  # the load step's own parser: a ValueError names the stage
        return value

    @model_validator(mode="after")
    def _early_stop_limit_needs_it_on(self) -> Self:
        if self.early_stop_ttft_p99_ms is not None and self.early_stop is Switch.off:
            raise ValueError(
                "early_stop_ttft_p99_ms: early stop is off (set early_stop on, or clear the limit)"
            )
        return self

    @model_validator(mode="after")
    def _lengths_in_order(self) -> Self:
        """min <= mean <= max per distribution, as the load step checks them."""
        for side in ("input", "output"):
            low, mean, high = (getattr(self, f"{side}_{stat}") for stat in ("min", "mean", "max"))
            if None in (low, mean, high):
                continue
            if not low <= mean <= high:
                raise ValueError(
                    f"{side}_min, {side}_mean, {side}_max: need min <= mean <= max, got "
                    f"{low} <= {mean:g} <= {high}"
                )
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Self:
        if self.stages is None:
            windows: list[tuple[float, float]] = [(self.rate, self.duration)]
            longest, stages_field, input_field = self.input_tokens, "rate, duration", "input_tokens"
        else:
            windows = list(parse_stages(self.stages))
            longest, stages_field, input_field = self.input_max or 0, "stages", "input_max"
        check_load_size(
            windows,
            self.warmup_requests,
            longest,
            stages_field=stages_field,
            input_field=input_field,
        )
        return self

    @property
    def knobs(self) -> tuple[str, ...]:
        """This scenario's workflow parameters, in declaration order."""
        scenario = SCENARIOS[self.scenario]
        return tuple(n for n in type(self).model_fields if n != "scenario" and scenario.has(n))

    @field_validator("target_labels")
    @classmethod
    def _selector_parses(cls, value: str) -> str:
        # An empty matchLabels would match every pod: the affinity would pin nothing.
        if not parse_label_selector(value):
            raise ValueError("needs at least one key=value label of the model pods")
        return value

    @field_validator(
        "slo_ttft_ms",
        "slo_tpot_ms",
        "slo_e2e_ms",
        "sla_ttft_p50_ms",
        "sla_ttft_p99_ms",
        "sla_itl_p50_ms",
        "sla_itl_p99_ms",
        "sla_e2e_p99_ms",
        "sla_error_rate",
        "sla_goodput_rps",
        "sla_slo_attainment",
        "regression_tolerance",
        "history_window",
        "metrics_port",
        "early_stop_ttft_p99_ms",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Argo parameters are strings; the UI leaves an optional knob as "".
        return None if value == "" else value

    @property
    def target_match_labels(self) -> dict[str, str]:
        """The target selector as a matchLabels map."""
        return parse_label_selector(self.target_labels)

    def to_arguments(self) -> dict[str, str]:
        """Every knob of the scenario as an Argo parameter string, in declaration order."""
        return {name: _argo_text(getattr(self, name)) for name in self.knobs}

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
        name = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            raise UsageError(f"{source}: unknown parameter '{name}'") from None
        msg = err["msg"].removeprefix("Value error, ")
        where = f"{name}: " if name else ""  # a whole-model check names its knobs itself
        raise UsageError(f"{source}: {where}{msg}{echo_input(err)}") from None
