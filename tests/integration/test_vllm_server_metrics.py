"""The load step's server-metrics sampler against a real vLLM server: vLLM's real metric names,
labels and histograms land in server_metrics.parquet, aggregate reads them through the shared
names, and the client-vs-server overhead check holds on real data (the client's interval
contains vLLM's request by request: tests/integration/test_vllm_load.py says why)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from steps.aggregate.__main__ import main as aggregate_main
from steps.load.__main__ import main as load_main
from steps.report.__main__ import main as report_main
from steps.server_metrics import SERVER_METRICS_FILE
from tests.fixtures.vllm import INPUT_TOKENS, OUTPUT_TOKENS, VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]

RATE, DURATION_S = 2, 8


def test_vllm_real_metrics_are_sampled_aggregated_and_the_overhead_check_holds(
    vllm_server: VllmServer, tmp_path: Path, vllm_tier_notes: list[str]
) -> None:
    load, summary_dir, report = tmp_path / "load", tmp_path / "summary", tmp_path / "report"
    code = load_main(
        [
            "--out", str(load), "--base-url", vllm_server.base_url,
            "--model-name", vllm_server.model_name,
            "--tokenizer-dir", str(vllm_server.tokenizer_dir),
            "--rate", str(RATE), "--duration", str(DURATION_S),
            "--input-tokens", str(INPUT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS),
            "--num-workers", "2", "--server-metrics-interval", "0.5",
        ]
    )  # fmt: skip
    assert code == 0
    run_json = json.loads((load / "run.json").read_text())
    assert run_json["server_metrics"]["failed_scrapes"] == 0

    data = pd.read_parquet(load / SERVER_METRICS_FILE)
    names = set(data["metric"].astype(str))
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:inter_token_latency_seconds_sum",
    ):
        assert name in names, sorted(n for n in names if n.startswith("vllm:"))[:80]
    types = data.drop_duplicates("family").set_index("family")["type"].astype(str)
    assert types["vllm:time_to_first_token_seconds"] == "histogram"
    assert types["vllm:num_requests_running"] == "gauge"
    assert types["vllm:prompt_tokens"] == "counter"
    labels = [json.loads(x) for x in data.query("metric == 'vllm:num_requests_running'")["labels"]]
    assert all(lab.get("model_name") == vllm_server.model_name for lab in labels), labels[:3]

    assert aggregate_main(["--records", str(load), "--out", str(summary_dir)]) == 0
    summary: dict[str, Any] = json.loads((summary_dir / "summary.json").read_text())
    server = summary["overall"]["server"]
    ok = summary["overall"]["requests"]["ok"]
    assert ok == RATE * DURATION_S
    assert server["running"]["max"] >= 1
    assert 0 < server["kv_cache_usage"]["max"] <= 1
    assert server["prompt_tokens_per_s"] > 0 and server["generation_tokens_per_s"] > 0
    for metric in ("ttft", "e2e"):
        check = server["overhead"][metric]
        assert check["server_count"] == ok == check["client_count"], check
        assert check["consistent"] is True, check
        assert check["overhead_ms"] > -1.0, check
    vllm_tier_notes.append(
        "server metrics vs client (mean excess over vLLM's own histograms, ms): TTFT "
        f"{server['overhead']['ttft']['overhead_ms']:.1f}, e2e "
        f"{server['overhead']['e2e']['overhead_ms']:.1f}; KV-cache usage max "
        f"{server['kv_cache_usage']['max']:.4f}, running max {server['running']['max']:.0f}"
    )

    argv = ["--summary", str(summary_dir), "--records", str(load), "--out", str(report)]
    assert report_main([*argv, "--bucket", ""]) == 0
    text = (report / "report.md").read_text()
    assert "## Server metrics" in text and "| ttft |" in text and "ERROR" not in text
    assert (report / "server_metrics.png").stat().st_size > 10_000
