"""vLLM-named Prometheus text from the simulator's counters."""

from __future__ import annotations

from dataclasses import dataclass

from steps.simulator.metrics import Histogram, KvCache, Metrics


def test_histogram_buckets_are_cumulative() -> None:
    hist = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 5.0):
        hist.observe(value)
    lines = hist.render("m", 'model_name="x"')
    assert lines[:3] == [
        'm_bucket{model_name="x",le="0.1"} 2',
        'm_bucket{model_name="x",le="1.0"} 3',
        'm_bucket{model_name="x",le="+Inf"} 4',
    ]
    assert lines[-1] == 'm_count{model_name="x"} 4'


def test_metrics_render_has_vllm_names_and_gauges() -> None:
    metrics = Metrics("Qwen/Qwen3-8B", KvCache(1000, 0.01))
    metrics.prompt_tokens = 512
    metrics.success["length"] += 1
    text = metrics.render(running=3, waiting=2, now=0.0).decode()
    assert 'vllm:num_requests_running{model_name="Qwen/Qwen3-8B"} 3' in text
    assert 'vllm:num_requests_waiting{model_name="Qwen/Qwen3-8B"} 2' in text
    assert 'vllm:prompt_tokens_total{model_name="Qwen/Qwen3-8B"} 512' in text
    assert (
        'vllm:request_success_total{finished_reason="length",model_name="Qwen/Qwen3-8B"} 1' in text
    )
    assert "# TYPE vllm:e2e_request_latency_seconds histogram" in text


@dataclass
class _Seq:
    prompt_tokens: int
    first_token_at: float


def test_kv_cache_usage_counts_prompt_and_decoded_tokens_of_admitted_sequences() -> None:
    kv = KvCache(capacity_tokens=1000, itl_s=0.01)
    prefilling, decoding = _Seq(300, 0.0), _Seq(200, 10.0)
    kv.admit(prefilling, output_tokens=100)
    kv.admit(decoding, output_tokens=100)
    # 0.05 s after its first token: 1 + 5 steps decoded.
    assert kv.usage(10.05) == (300 + 200 + 6) / 1000
    # Decoding stops at its output length; the cache is never over 1.
    assert kv.usage(100.0) == (300 + 200 + 100) / 1000
    kv.release(decoding)
    assert kv.usage(100.0) == 0.3
    kv.admit(_Seq(5000, 0.0), output_tokens=1)
    assert kv.usage(100.0) == 1.0
    metrics = Metrics("m", kv)
    text = metrics.render(running=2, waiting=0, now=100.0).decode()
    assert 'vllm:kv_cache_usage_perc{model_name="m"} 1.0' in text
    assert 'vllm:num_preemptions_total{model_name="m"} 0' in text
