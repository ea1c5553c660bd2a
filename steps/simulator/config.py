"""The simulator's settings: one pydantic model whose field names are the CLI flags' names."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SimulatorConfig"]


class SimulatorConfig(BaseModel):
    """Everything `python -m steps.simulator` can be told; descriptions double as `--help`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port, logged)")
    model: str = Field("Qwen/Qwen3-8B", min_length=1, description="the one model name served")
    max_model_len: int = Field(32768, ge=1, description="context length reported by /v1/models")
    ttft_ms: float = Field(50.0, ge=0, description="base time to first token, ms")
    itl_ms: float = Field(10.0, ge=0, description="time per decode step, ms")
    prefill_us_per_token: float = Field(
        0.0, ge=0, description="extra time to first token per prompt token, microseconds"
    )
    max_num_seqs: int = Field(
        256, ge=1, description="sequences decoded at once; later requests wait in a FIFO queue"
    )
    kv_cache_tokens: int = Field(
        262144,
        ge=1,
        description="KV-cache capacity in tokens: vllm:kv_cache_usage_perc = tokens held by the "
        "admitted sequences / this",
    )
    tokens_per_chunk: int = Field(
        1, ge=1, description="decode steps coalesced into one streamed chunk (vLLM does this)"
    )
    tokenizer: Path | None = Field(
        None, description="Hugging Face tokenizer directory: exact prompt counts, real token text"
    )
    seed: int = Field(0, description="seed for stop points, output text and failure injection")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 500/503")
    disconnect_rate: float = Field(
        0.0, ge=0, le=1, description="share of streams whose connection is closed mid-stream"
    )
    malformed_rate: float = Field(
        0.0, ge=0, le=1, description="share of streams with one malformed SSE line mid-stream"
    )
    slow_first_byte_ms: float = Field(
        0.0, ge=0, description="delay before the response head of every generation request, ms"
    )
    ssl_certfile: Path | None = Field(
        None, description="PEM certificate chain: serve https (same flag as vLLM's)"
    )
    ssl_keyfile: Path | None = Field(
        None, description="PEM private key for --ssl-certfile (omit if the chain file holds it)"
    )
    ttft_jitter: float = Field(
        0.0, ge=0, description="lognormal sigma of each request's TTFT (0 = exact; 0.25 ~ a GPU)"
    )
    itl_jitter: float = Field(
        0.0,
        ge=0,
        description="lognormal sigma of each request's decode speed (0 = the engine's lock-step)",
    )
    stall_rate: float = Field(
        0.0, ge=0, le=1, description="share of requests that stall once in decode (--stall-ms)"
    )
    stall_ms: float = Field(0.0, ge=0, description="length of one decode stall, ms")
    enable_prompt_tokens_details: bool = Field(
        False,
        description="usage.prompt_tokens_details as vLLM's flag of that name adds it; its "
        "cached_tokens is 0: the simulator has no prefix cache",
    )
    level_drift: float = Field(
        0.0,
        ge=0,
        description="lognormal sigma of this run's TTFT and ITL level (between-night drift)",
    )
    startup_delay_s: float = Field(
        0.0, ge=0, description="seconds during which /health answers 503 and no model is served"
    )
