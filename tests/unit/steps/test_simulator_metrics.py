"""vLLM-named Prometheus text from the simulator's counters."""

from __future__ import annotations

from steps.simulator.metrics import Histogram, Metrics


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
    metrics = Metrics("Qwen/Qwen3-8B")
    metrics.prompt_tokens = 512
    metrics.success["length"] += 1
    text = metrics.render(running=3, waiting=2).decode()
    assert 'vllm:num_requests_running{model_name="Qwen/Qwen3-8B"} 3' in text
    assert 'vllm:num_requests_waiting{model_name="Qwen/Qwen3-8B"} 2' in text
    assert 'vllm:prompt_tokens_total{model_name="Qwen/Qwen3-8B"} 512' in text
    assert (
        'vllm:request_success_total{finished_reason="length",model_name="Qwen/Qwen3-8B"} 1' in text
    )
    assert "# TYPE vllm:e2e_request_latency_seconds histogram" in text
