"""The load step's native configuration: inference-perf's `config.yml`, as pydantic v2 models.

The scenario's ConfigMap (AI on EKS guide, baseline) must load unchanged and mean the same thing
here as in inference-perf, so field names and nesting follow inference-perf's schema. Where we
differ, it is on purpose and said in the field's description:

- `load.type: constant` means evenly spaced sends at absolute deadlines `t0 + i/rate`;
  inference-perf's "constant" draws randomized (exponential, rescaled) gaps.
- `api.streaming` defaults to true: TTFT and ITL only exist for streamed responses.
- Secrets are never config values: `server.api_key_env` and `tokenizer.token_env` name the
  environment variable that holds them (a key in a ConfigMap ends up in `kubectl get -o yaml`).
- `load.seed`, `warmup_requests`, `request_timeout` and `drain_timeout` are ours.
- `load.type: concurrent` (closed loop: `concurrency_level` users, each sending its next request
  when its previous one ends, `num_requests` in all) splits the users exactly across the workers;
  inference-perf rounds per worker and delivered 74.5 in flight for 45 asked (its #319/#320).
- `load.sweep` is inference-perf's block; the probe that reads it is `python -m steps.load probe`
  and offers a closed-loop concurrency ladder (`estimator: ladder`, ours, the default) besides
  inference-perf's burst-and-drain estimate (`estimator: burst`).
- `storage`: the load step writes local files only. `storage.local_storage.path` is its output
  directory when `--out` is not given; S3 and GCS blocks parse (a whole inference-perf config is
  read) but the load step refuses them by name: the report step uploads (`output_dir`).

Every model forbids unknown keys, as inference-perf's `StrictBaseModel` does: a misspelt key that
silently falls back to a default would benchmark something else than the user asked for.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from steps.cli import read_input_text
from steps.errors import UsageError
from steps.names import (
    BUCKET_NAME_PATTERN,
    ENV_NAME_PATTERN,
    check_base_url,
    check_model_name,
    echo_input,
)
from steps.shared import (
    DEFAULT_DRAIN_TIMEOUT_S,
    MAX_REQUEST_SECONDS,
    MAX_REQUESTS,
    MAX_SECONDS,
    MAX_STAGES,
    MAX_TOKENS_PER_REQUEST,
    APIType,
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
    check_load_size,
)

__all__ = [
    "CONCURRENT",
    "APIConfig",
    "ConcurrentStage",
    "Config",
    "DataConfig",
    "DataType",
    "Distribution",
    "DistributionType",
    "EarlyStop",
    "LoadConfig",
    "LocalStorage",
    "S3Storage",
    "ServerConfig",
    "ServerType",
    "SharedPrefix",
    "Stage",
    "StorageConfig",
    "SweepConfig",
    "TokenizerConfig",
    "config_from_dict",
    "format_validation_error",
    "load_config",
    "output_dir",
]


def _secret_env(secret: str) -> Any:
    """A field naming the environment variable that holds `secret` (the config never holds it:
    a key in a ConfigMap ends up in `kubectl get -o yaml`)."""
    return Field(
        default=None,
        pattern=ENV_NAME_PATTERN,
        description=f"NAME of the environment variable holding {secret} (never the value)",
    )


def _reject_inline_secret(data: Any, key: str, fix: str) -> Any:
    """Refuse a secret written into the config: ConfigMaps show up in `kubectl get -o yaml`."""
    if isinstance(data, dict) and key in data:
        raise ValueError(
            f"{key} must not be in the config file; put it in an environment variable and {fix}"
        )
    return data


class APIConfig(StrictModel):
    type: APIType = Field(
        default=APIType.completion,
        description="OpenAI endpoint: completion (/v1/completions) or chat (/v1/chat/completions)",
    )
    streaming: bool = Field(
        default=True,
        description="stream responses (needed for TTFT and ITL; inference-perf defaults to false)",
    )
    headers: dict[str, str] | None = Field(
        default=None, description="extra HTTP headers sent with every request (no secrets)"
    )


class DistributionType(StrEnum):
    normal = "normal"
    uniform = "uniform"
    fixed = "fixed"


class Distribution(StrictModel):
    """A token-length distribution; `std_dev: 0, min = max = mean` is an exact length."""

    type: DistributionType = Field(
        default=DistributionType.normal,
        description="normal (mean, std_dev; clipped to min..max), uniform (min..max), fixed (mean)",
    )
    mean: float = Field(default=512, gt=0, description="mean length in tokens")
    std_dev: float = Field(default=200, ge=0, description="standard deviation in tokens")
    min: int = Field(default=10, ge=1, description="smallest length in tokens")
    max: int = Field(
        default=1024, ge=1, le=MAX_TOKENS_PER_REQUEST, description="largest length in tokens"
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        if self.type is not DistributionType.uniform and not self.min <= self.mean <= self.max:
            raise ValueError(
                f"mean ({self.mean:g}) must lie within [min, max] = [{self.min}, {self.max}]"
            )
        return self

    @property
    def is_fixed(self) -> bool:
        """True when every sample is the same length."""
        if self.type is DistributionType.uniform:
            return self.min == self.max
        return self.type is DistributionType.fixed or self.std_dev == 0 or self.min == self.max


class DataType(StrEnum):
    synthetic = "synthetic"
    random = "random"
    shared_prefix = "shared_prefix"
    shareGPT = "shareGPT"  # inference-perf's spelling, as configs write it


#: shareGPT's length filters when a config gives none: inference-perf's Distribution bounds
#: (our synthetic default output length, exactly 128, would keep only 128-token replies).
_SHAREGPT_DEFAULT_FILTER = {"min": 10, "max": 1024, "mean": 512}


class SharedPrefix(StrictModel):
    """Groups of requests sharing a system prompt, to exercise prefix caching."""

    num_groups: int = Field(default=10, ge=1, description="distinct shared prefixes")
    num_prompts_per_group: int = Field(
        default=10, ge=1, description="distinct questions per prefix"
    )
    system_prompt_len: int = Field(default=100, ge=1, description="shared prefix length in tokens")
    question_len: int = Field(default=50, ge=1, description="per-request suffix length in tokens")
    output_len: int = Field(default=50, ge=1, description="max_tokens per request")


class DataConfig(StrictModel):
    type: DataType = Field(
        default=DataType.synthetic,
        description=(
            "synthetic or random (distinct random-token prompts), shared_prefix, shareGPT "
            "(real conversations from data.path or --dataset-dir; the distributions' min and "
            "max filter prompt and reply lengths)"
        ),
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "shareGPT: the conversations file, or a directory holding it (the dataset step's "
            "--out); --dataset-dir overrides it"
        ),
    )
    input_distribution: Distribution = Field(
        default_factory=Distribution, description="prompt length in tokens"
    )
    output_distribution: Distribution = Field(
        default_factory=lambda: Distribution(mean=128, std_dev=0, min=128, max=128),
        description="max_tokens per request (exact with server.ignore_eos)",
    )
    shared_prefix: SharedPrefix | None = Field(
        default=None, description="required when type is shared_prefix"
    )

    @model_validator(mode="before")
    @classmethod
    def _sharegpt_default_filters(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") == DataType.shareGPT.value:
            for key in ("input_distribution", "output_distribution"):
                data = {key: dict(_SHAREGPT_DEFAULT_FILTER)} | data
        return data

    @model_validator(mode="after")
    def _shared_prefix_block(self) -> Self:
        if self.type is DataType.shared_prefix and self.shared_prefix is None:
            raise ValueError("type shared_prefix needs a shared_prefix block")
        return self


class Stage(StrictModel):
    rate: float = Field(gt=0, description="requests per second")
    duration: float = Field(gt=0, le=MAX_SECONDS, description="send window in seconds")


class ConcurrentStage(StrictModel):
    """A closed-loop stage (`load.type: concurrent`): `concurrency_level` users, each sending its
    next request as soon as its previous one ended, until `num_requests` have been sent."""

    num_requests: int = Field(ge=1, le=MAX_REQUESTS, description="requests in the stage")
    concurrency_level: int = Field(
        ge=1, le=MAX_REQUESTS, description="users, i.e. requests in flight at once"
    )


#: `load.type` of a closed-loop run. Not one of `steps.shared.LoadType`: that enum is the
#: workflow's `load_type` knob, whose stages are rate x duration.
CONCURRENT = "concurrent"

#: Tags of the two stage shapes (not keys: a tag is dropped from the key paths errors name).
_OPEN_TAG, _CLOSED_TAG = "open-loop", "closed-loop"


def _stage_shape(value: Any) -> str:
    """Which stage model a stage is: closed-loop when it names a closed-loop key."""
    keys = value if isinstance(value, dict) else getattr(value, "__dict__", {})
    closed = "num_requests" in keys or "concurrency_level" in keys
    return _CLOSED_TAG if closed else _OPEN_TAG


AnyStage = Annotated[
    Annotated[Stage, Tag(_OPEN_TAG)] | Annotated[ConcurrentStage, Tag(_CLOSED_TAG)],
    Discriminator(_stage_shape),
]


class SweepConfig(StrictModel):
    """inference-perf's `load.sweep`: probe the server for its saturation rate, then run
    `num_stages` constant stages of `stage_duration` s from 1/s up to it (`type` spaces them).
    Read by `python -m steps.load probe`, which writes the stages for the load step."""

    type: SweepType = Field(
        description="linear: evenly from 1/s to saturation; geometric: clustered near it"
    )
    num_requests: SweepNumRequests = Field(
        default=2000, description="burst: requests sent in 5 s; ladder: requests over every rung"
    )
    timeout: float = Field(
        default=60,
        gt=0,
        le=MAX_REQUEST_SECONDS,
        description="burst: seconds the drain is watched; ladder: seconds one request may take",
    )
    num_stages: SweepNumStages = Field(default=5, description="stages generated")
    stage_duration: SweepStageDuration = Field(
        default=180, description="whole seconds of each generated stage"
    )
    saturation_percentile: SweepPercentile = Field(
        default=95, description="burst: the percentile of the drain rates taken as saturation"
    )
    estimator: SweepEstimator = Field(
        default=SweepEstimator.ladder,
        description=(
            "ladder (ours): closed-loop users doubled until throughput stops growing, checked "
            "with Little's law; burst: inference-perf's burst-and-drain (biased, for parity)"
        ),
    )


class EarlyStop(StrictModel):
    """Ours: once a stage shows saturation (steps/stage_saturation.py: errors, sends falling
    behind, TTFT's tail growing, or `ttft_p99_ms`), the remaining stages are skipped, so a
    capacity ladder stops spending GPU time past the knee. run.json says which stage and why."""

    ttft_p99_ms: float | None = Field(
        default=None, gt=0, description="also stop once a stage's TTFT p99 is above this (ms)"
    )


class LoadConfig(StrictModel):
    type: LoadType | Literal["concurrent"] = Field(
        default=LoadType.constant,
        description=(
            "constant: sends at t0 + i/rate exactly (inference-perf randomizes these gaps); "
            "poisson: seeded exponential gaps; concurrent: closed loop (stages of "
            "num_requests and concurrency_level)"
        ),
    )
    stages: list[AnyStage] = Field(
        default_factory=list,
        max_length=MAX_STAGES,
        description=(
            "run in order: rate (QPS) x duration (s), or num_requests x concurrency_level for "
            "type concurrent; empty only with a sweep (the probe writes the stages)"
        ),
    )
    sweep: SweepConfig | None = Field(
        default=None,
        description="find the saturation rate first (python -m steps.load probe), then sweep",
    )
    num_workers: NumWorkers = Field(
        default=4, description="load-generator processes, each with a share of the schedule"
    )
    worker_max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="cap on in-flight requests per worker; unset = no cap (a cap hides overload)",
    )
    seed: int = Field(default=0, ge=0, description="seeds arrivals, lengths and prompt contents")
    warmup_requests: int = Field(
        default=0, ge=0, description="requests sent before stage 0 and not recorded"
    )
    request_timeout: RequestTimeout = Field(
        default=600, description="seconds a whole request (incl. streaming) may take"
    )
    early_stop: EarlyStop | None = Field(
        default=None,
        description="skip the remaining stages once one saturates (ours); unset = run them all",
    )
    drain_timeout: float = Field(
        default=DEFAULT_DRAIN_TIMEOUT_S,
        ge=0,
        le=MAX_REQUEST_SECONDS,
        description="seconds after a stage's send window that in-flight requests may still finish",
    )

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        allowed = [t.value for t in LoadType] + [CONCURRENT]
        if value not in allowed:
            listed = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
            raise ValueError(f"must be {listed}, not {value!r}")
        return value

    @property
    def is_concurrent(self) -> bool:
        """Closed loop: stages are `ConcurrentStage`s."""
        return self.type == CONCURRENT

    @model_validator(mode="after")
    def _stages_fit_type(self) -> Self:
        want = ConcurrentStage if self.is_concurrent else Stage
        keys = "num_requests and concurrency_level" if self.is_concurrent else "rate and duration"
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, want):
                raise ValueError(f"stages[{i}]: type {self.type} takes {keys} per stage")
        if self.sweep is not None and self.is_concurrent:
            raise ValueError("sweep: not with type concurrent (a sweep is of rates)")
        if not self.stages and self.sweep is None:
            raise ValueError("stages: at least one stage is needed (or a sweep)")
        return self

    def open_loop_stages(self) -> list[Stage]:
        """The rate x duration stages (none for a closed-loop run)."""
        return [s for s in self.stages if isinstance(s, Stage)]


class ServerType(StrEnum):
    vllm = "vllm"
    sglang = "sglang"
    tgi = "tgi"
    openai = "openai"


class ServerConfig(StrictModel):
    type: ServerType = Field(default=ServerType.vllm, description="model server kind")
    model_name: str | None = Field(
        default=None,
        min_length=1,
        description="model id sent in requests; unset = the first id from /v1/models",
    )
    base_url: str = Field(description="server root, e.g. http://qwen3-vllm.default:8000")
    ignore_eos: bool = Field(
        default=True, description="ask the server to generate exactly max_tokens (vLLM extension)"
    )
    api_key_env: str | None = _secret_env("the bearer token")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        return _reject_inline_secret(data, "api_key", "set server.api_key_env to its name")

    _base_url_ok = field_validator("base_url")(check_base_url)

    @field_validator("model_name")
    @classmethod
    def _model_name_ok(cls, value: str | None) -> str | None:
        return None if value is None else check_model_name(value)


class TokenizerConfig(StrictModel):
    pretrained_model_name_or_path: str | None = Field(
        default=None,
        description="Hugging Face repo id or local directory; unset = server.model_name",
    )
    trust_remote_code: bool | None = Field(default=None, description="passed to AutoTokenizer")
    token_env: str | None = _secret_env("the Hugging Face token")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        return _reject_inline_secret(data, "token", "use HF_TOKEN or set tokenizer.token_env")


class LocalStorage(StrictModel):
    path: str = Field(
        default="reports",
        min_length=1,
        description="output directory of the load step when --out is not given",
    )
    report_file_prefix: str | None = Field(
        default=None,
        description=(
            "refused by the load step: its file names are fixed (records.parquet, run.json; "
            "steps/CONTRACTS.md), the steps after it find them by those names"
        ),
    )


#: Why the load step refuses a remote storage block: uploading is another step's job.
_UPLOAD_ELSEWHERE = (
    "the load step writes local files only; results reach S3 through the report step "
    "(the workflow's bucket and path parameters)"
)


class S3AddressingStyle(StrEnum):
    auto = "auto"
    virtual = "virtual"
    path = "path"


class S3Storage(StrictModel):
    """inference-perf's S3 block, parsed so its config reads whole; the load step refuses it."""

    bucket_name: str = Field(pattern=BUCKET_NAME_PATTERN, description="S3 bucket for results")
    path: str = Field(default="", description="key prefix inside the bucket")
    report_file_prefix: str | None = Field(default=None, description="prefix for report file names")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint; unset = AWS"
    )
    region_name: str | None = Field(default=None, description="AWS region")
    addressing_style: S3AddressingStyle = Field(
        default=S3AddressingStyle.auto, description="auto, virtual or path-style bucket URLs"
    )


class StorageConfig(StrictModel):
    """Where results go. The load step writes local files only (`output_dir`); S3 and GCS blocks
    parse, so an inference-perf config is read whole, and are then refused by name."""

    local_storage: LocalStorage | None = Field(
        default=None, description="the load step's output directory when --out is not given"
    )
    simple_storage_service: S3Storage | None = Field(
        default=None, description=f"refused by the load step: {_UPLOAD_ELSEWHERE}"
    )
    google_cloud_storage: dict[str, Any] | None = Field(
        default=None, description=f"refused by the load step: {_UPLOAD_ELSEWHERE}"
    )


class Config(StrictModel):
    """Root of `config.yml`."""

    api: APIConfig = Field(default_factory=APIConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    load: LoadConfig
    server: ServerConfig
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _shared_prefix_needs_completion(self) -> Self:
        if self.data.type is DataType.shared_prefix and self.api.type is APIType.chat:
            # The shared prefix is a token-exact string; chat templates would reshape it.
            raise ValueError("data.type shared_prefix works with api.type completion only")
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Self:
        check_load_size(
            (
                (stage.rate, stage.duration)
                if isinstance(stage, Stage)
                else (stage.num_requests, 1.0)
                for stage in self.load.stages
            ),
            self.load.warmup_requests,
            self.data.input_distribution.max,
            stages_field="load.stages",
            input_field="data.input_distribution.max",
        )
        return self


def _without_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The key path without the stage-shape tags pydantic puts in it."""
    return tuple(p for p in loc if p not in (_OPEN_TAG, _CLOSED_TAG))


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    """`('load', 'stages', 0, 'rate')` -> `load.stages[0].rate`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config model class that owns the key at `loc`, to list its allowed keys."""
    model: type[BaseModel] | None = Config
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        if part in _TAGGED:  # pydantic names the stage shape it validated against
            model = _TAGGED[str(part)]
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _first_model_in(field.annotation)
    return model


_TAGGED: dict[str, type[BaseModel]] = {_OPEN_TAG: Stage, _CLOSED_TAG: ConcurrentStage}


def _first_model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the first bad key path, what was seen and what is allowed."""
    err = exc.errors()[0]
    loc = _without_tags(tuple(err["loc"]))
    path = _loc_to_path(loc)
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        owner = _model_at(tuple(err["loc"]))
        allowed = ", ".join(owner.model_fields) if owner else "?"
        return f"{source}: unknown key '{path}'; allowed here: {allowed}{more}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{path}'{more}"
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:  # a whole-config check: its message names the keys
        return f"{source}: {msg}{more}"
    return f"{source}: {path}: {msg}{echo_input(err)}{more}"


def config_from_dict(data: Any, source: str = "config") -> Config:
    """Validate a parsed `config.yml`; errors become one-line `UsageError`s."""
    if not isinstance(data, dict):
        raise UsageError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise UsageError(format_validation_error(exc, source)) from None


def load_config(path: Path) -> Config:
    """Read and validate a `config.yml` file."""
    text = read_input_text(path, "--config")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}:{where} is not valid YAML") from None
    return config_from_dict(data, str(path))


def output_dir(config: Config, out: Path | None) -> Path:
    """The load step's output directory: `--out`, else `storage.local_storage.path`.

    Honours `storage` as inference-perf reads it where the load step can (a local directory) and
    refuses the rest by name, so a config never means something else here than there. Give it
    the config as validated from the file: whether `local_storage.path` was written is read from
    the keys set, which a config rebuilt from `model_dump()` reports all of.
    """
    storage = config.storage
    for backend in ("simple_storage_service", "google_cloud_storage"):
        if getattr(storage, backend) is not None:
            raise UsageError(f"storage.{backend}: {_UPLOAD_ELSEWHERE}; remove the block")
    local = storage.local_storage
    if local is not None and local.report_file_prefix is not None:
        raise UsageError(
            "storage.local_storage.report_file_prefix: the load step's file names are fixed "
            "(records.parquet, run.json); remove the key"
        )
    configured = (
        Path(local.path) if local is not None and "path" in local.model_fields_set else None
    )
    if out is None:
        if local is None:
            raise UsageError(
                "no output directory: pass --out DIR or set storage.local_storage.path"
            )
        return Path(local.path)
    if configured is not None and configured.resolve() != out.resolve():
        raise UsageError(
            f"--out {out} and storage.local_storage.path {configured} differ; give one of them"
        )
    return out
