"""The plan of a load run: every request's bytes and every worker's share, decided before t0.

Building prompts at exact token lengths is the expensive part of a run (seconds for thousands of
prompts), so it happens here, in the main process, before any worker starts the clock: the hot
loops only send bytes that already exist. Whatever cannot go on the wire (a header with CR/LF, an
API key ending in a newline) fails here in one line, before a worker process is spawned.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steps.cli import secret_from_env
from steps.errors import UsageError
from steps.load.config import Config, DataType, ServerType
from steps.load.conversations import sample_dataset
from steps.load.http1 import encode_request
from steps.load.prompts import (
    PromptBuilder,
    SharedPrefixPrompts,
    build_shared_prefix,
    load_tokenizer,
    sample_lengths,
)
from steps.load.schedule import StagePlan, user_share, worker_share
from steps.load.scrape import MetricsSettings
from steps.load.stream_request import RequestSpec
from steps.load.worker import StageShare, WorkerSpec
from steps.shared import APIType

__all__ = [
    "FanOut",
    "LoadSettings",
    "PodShare",
    "Requests",
    "build_requests",
    "check_supported",
    "request_body",
    "request_headers",
    "worker_specs",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodShare:
    """Which share of ONE schedule this load pod sends: request i of a stage goes to pod
    i mod count (and within the pod round-robin to its workers), so every pod's sends, and every
    worker's, stay evenly spaced; pod p with W workers sends what workers p, p + N, ... of one
    pod with N x W workers would."""

    index: int
    count: int


@dataclass(frozen=True)
class FanOut:
    """How this pod meets the others: the coordinator's (host, port) and how long it waits for
    every pod to be ready (scheduling, image pulls, prompt building) before failing the run."""

    coordinator: tuple[str, int]
    start_timeout_s: float


@dataclass(frozen=True)
class LoadSettings:
    """A resolved load run: config with overrides applied, plus where things come from/go."""

    config: Config
    out_dir: Path
    tokenizer_source: str
    run_id: str
    scenario: str
    log_level: str = "INFO"
    dataset: Path | None = None  # data.type shareGPT: the conversations file or its directory
    pods: PodShare = PodShare(0, 1)
    fanout: FanOut | None = None  # None: one pod, no coordinator
    metrics: MetricsSettings = field(default_factory=MetricsSettings)


@dataclass(frozen=True)
class Requests:
    """What the run sends: per stage, its requests in send order; and the warm-up bodies."""

    per_stage: list[list[RequestSpec]]
    warmup: list[bytes]
    dataset: dict[str, Any] | None = None  # run.json's `dataset` (shareGPT runs)

    @property
    def total(self) -> int:
        """Scheduled requests over every stage (warm-up excluded)."""
        return sum(len(stage) for stage in self.per_stage)


def check_supported(config: Config) -> None:
    """Refuse config features the load step does not implement (one line each)."""
    if not config.load.stages:
        raise UsageError(
            "load.stages is empty: a load.sweep's stages come from its probe "
            "(`python -m steps.load probe` writes them; pass them with --stages)"
        )


def request_headers(config: Config) -> dict[str, str]:
    """The headers of every request, API key included; refuses what cannot go on the wire.

    The base URL was checked where the config was validated (`steps.names.check_base_url`);
    headers are checked by the encoder the workers use. The key is checked on its own so the
    message names server.api_key_env, not api.headers, and never quotes it (a secret mounted
    from a file often ends in a newline).
    """
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
    headers.update(config.api.headers or {})
    secret = secret_from_env(os.environ, config.server.api_key_env, "server.api_key_env")
    api_key = secret.get_secret_value() if secret else None
    log.info("API key: %s", "set" if api_key else "not set")
    try:
        encode_request("POST", "/", "host", headers)
    except ValueError as exc:
        raise UsageError(f"api.headers: {exc}") from None
    if api_key:
        authorization = {"Authorization": f"Bearer {api_key}"}
        try:
            encode_request("POST", "/", "host", authorization)
        except ValueError:
            raise UsageError(
                "server.api_key_env: the key holds CR, LF, NUL or a non-latin-1 character, "
                "which cannot go in an HTTP header (a trailing newline?)"
            ) from None
        headers.update(authorization)
    return headers


def request_body(config: Config, model: str, prompt: str, max_tokens: int) -> bytes:
    """The JSON body of one request (built before t0): streamed, with the usage chunk, unless
    api.streaming is false."""
    body: dict[str, Any] = {"model": model}
    if config.api.type is APIType.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body["max_tokens"] = max_tokens
    body["stream"] = config.api.streaming
    if config.api.streaming:
        body["stream_options"] = {"include_usage": True}
    if config.server.ignore_eos and config.server.type in (ServerType.vllm, ServerType.sglang):
        body["ignore_eos"] = True
    if config.server.type is ServerType.vllm:
        # vLLM coalesces several tokens per chunk at times; token_ids make counts exact.
        body["return_token_ids"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def build_requests(settings: LoadSettings, model: str, plans: list[StagePlan]) -> Requests:
    """This pod's requests (all of them with one pod), bodies at exact prompt length (the
    expensive part, before t0)."""
    config = settings.config
    # No token_env configured: the Hub's own variable, optional (public tokenizers need none).
    secret = secret_from_env(os.environ, config.tokenizer.token_env, "tokenizer.token_env")
    token = secret.get_secret_value() if secret else os.environ.get("HF_TOKEN") or None
    tokenizer = load_tokenizer(settings.tokenizer_source, token, config.tokenizer.trust_remote_code)
    total = sum(len(p.offsets_ns) for p in plans)
    warm = config.load.warmup_requests
    pods = settings.pods
    # This pod's share of the prompt numbers: warm-up 0..warm-1, then each stage's requests.
    mine = list(worker_share(warm, pods.count, pods.index))
    first = warm
    for plan in plans:
        share = worker_share(len(plan.offsets_ns), pods.count, pods.index)
        mine += [first + i for i in share]
        first += len(plan.offsets_ns)
    texts, in_lengths, out_lengths, dataset = _prompts(settings, tokenizer, mine, total + warm)
    body = {n: request_body(config, model, texts[n], out_lengths[n]) for n in mine}
    per_stage: list[list[RequestSpec]] = []
    first = warm
    for plan in plans:
        stage = []
        for index in worker_share(len(plan.offsets_ns), pods.count, pods.index):
            n = first + index
            stage.append(
                RequestSpec(
                    plan.stage,
                    index,
                    plan.offsets_ns[index],
                    body[n],
                    in_lengths[n],
                    out_lengths[n],
                )
            )
        first += len(plan.offsets_ns)
        per_stage.append(stage)
    return Requests(per_stage, [body[n] for n in mine if n < warm], dataset)


def _prompts(
    settings: LoadSettings, tokenizer: Any, mine: list[int], count: int
) -> tuple[dict[int, str], list[int], list[int], dict[str, Any] | None]:
    """This pod's prompt texts (by prompt number), the whole schedule's input and output
    lengths (every pod draws the same), and run.json's `dataset` (shareGPT runs), for the
    config's data type."""
    config = settings.config
    pods = settings.pods
    dataset: dict[str, Any] | None = None
    if config.data.type is DataType.shareGPT:
        sample = sample_dataset(settings.dataset, tokenizer, config, count)
        in_lengths, out_lengths = sample.input_lengths, sample.output_lengths
        texts = {n: sample.prompts[n] for n in mine}
        dataset = sample.run_info()
    elif config.data.type is DataType.shared_prefix:
        shared = _shared_prefix(settings, tokenizer)
        in_lengths = [shared.length] * count
        assert config.data.shared_prefix is not None  # the config requires the block
        out_lengths = [config.data.shared_prefix.output_len] * count
        texts = {n: shared.text(n) for n in mine}
    else:
        rng = random.Random(config.load.seed)
        # Lengths of the whole schedule (every pod draws the same), prompts of this pod's share.
        in_lengths = sample_lengths(config.data.input_distribution, count, rng)
        out_lengths = sample_lengths(config.data.output_distribution, count, rng)
        started = time.monotonic()
        # The seed and the pod index choose the filler words; the number (unique head) is global.
        seed = config.load.seed + 1_000_003 * pods.index
        builder = PromptBuilder(tokenizer, config.api.type, seed, settings.run_id)
        prompts = builder.build([in_lengths[n] for n in mine], numbers=mine)
        log.info("built %d prompts in %.1f s", len(prompts), time.monotonic() - started)
        texts = dict(zip(mine, prompts, strict=True))
    return texts, in_lengths, out_lengths, dataset


def _shared_prefix(settings: LoadSettings, tokenizer: Any) -> SharedPrefixPrompts:
    """The run's shared-prefix prompts: the same in every load pod (config seed, not the pod)."""
    config = settings.config
    block = config.data.shared_prefix
    assert block is not None  # DataConfig requires it for type shared_prefix
    started = time.monotonic()
    builder = PromptBuilder(tokenizer, config.api.type, config.load.seed, settings.run_id)
    shared = build_shared_prefix(
        builder,
        block.num_groups,
        block.num_prompts_per_group,
        block.system_prompt_len,
        block.question_len,
        config.load.seed,
    )
    log.info(
        "built %d shared-prefix prompts (%d groups) in %.1f s",
        len(shared.prompts),
        block.num_groups,
        time.monotonic() - started,
    )
    return shared


def worker_specs(
    settings: LoadSettings,
    headers: dict[str, str],
    plans: list[StagePlan],
    requests: Requests,
    parts_dir: Path,
) -> list[WorkerSpec]:
    """One spec per worker: every Nth request of each open-loop stage, so its sends stay evenly
    spaced; of a closed-loop stage, its exact share of the users and their requests."""
    config = settings.config
    num_workers = config.load.num_workers
    chat = config.api.type is APIType.chat
    specs = []
    for w in range(num_workers):
        stages = [
            _stage_share(plan, stage, num_workers, w)
            for plan, stage in zip(plans, requests.per_stage, strict=True)
        ]
        specs.append(
            WorkerSpec(
                worker=w,
                run_id=settings.run_id,
                base_url=config.server.base_url.rstrip("/"),
                path="/v1/chat/completions" if chat else "/v1/completions",
                headers=headers,
                chat=chat,
                stages=stages,
                warmup=requests.warmup[w::num_workers],
                request_timeout_s=config.load.request_timeout,
                drain_timeout_s=config.load.drain_timeout,
                max_concurrency=config.load.worker_max_concurrency,
                parts_dir=str(parts_dir),
                tokenizer_source=settings.tokenizer_source,
                tokenizer_token_env=config.tokenizer.token_env or "HF_TOKEN",
                tokenizer_trust_remote_code=bool(config.tokenizer.trust_remote_code),
                log_level=settings.log_level,
                streaming=config.api.streaming,
            )
        )
    return specs


def _stage_share(
    plan: StagePlan, stage: list[RequestSpec], num_workers: int, worker: int
) -> StageShare:
    if plan.concurrency is None:
        indices = worker_share(len(stage), num_workers, worker)
        return StageShare(plan.duration_s, None, [stage[i] for i in indices])
    users, indices = user_share(len(stage), plan.concurrency, num_workers, worker)
    return StageShare(None, users, [stage[i] for i in indices])
