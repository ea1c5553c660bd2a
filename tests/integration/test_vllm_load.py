"""The load step against a real vLLM server: exact token accounting, chunk coalescing, latency
physics, and agreement with vLLM's own Prometheus histograms.

Each scenario runs the step once (module-scoped fixture) and every test checks one property of
that run, so a failure names the property. vLLM's histograms are scraped before and after the run
and diffed, so earlier requests in the session do not count.

Why the client must measure MORE than vLLM: vLLM's TTFT/e2e start at `arrival_time` (set in its
API server after the request was parsed and rendered) and stop when its output processor handles
the token, before detokenising and writing the SSE chunk. Our interval starts before the request
is written and ends after the chunk is read, so it contains vLLM's, request by request.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest

from steps.load.__main__ import main
from tests.fixtures.vllm import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    STREAM_INTERVAL,
    TOP_RATE,
    HistogramTotals,
    VllmServer,
    scrape_histogram_totals,
)

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]

TTFT_METRIC = "vllm:time_to_first_token_seconds"
E2E_METRIC = "vllm:e2e_request_latency_seconds"
#: Sums of float seconds from two processes: allow rounding, not a real deficit.
CLOCK_SLACK_S = 0.001
#: Largest mean client-minus-vLLM excess per request (TTFT and e2e), ms. Measured here over nine
#: 20-request runs at 1 QPS on 2 cores shared with other work: typical 4-10 ms (median TTFT 10,
#: e2e 9), but now and then one request's first or last chunk reaches the client up to ~1 s after
#: vLLM's own timestamp (a raw-socket client sees the same stalls, so they are not ours), which
#: moves a 20-request mean by 50 ms. The bound is sized for those stalls; the typical figure is
#: printed under "vllm tier measurements" on every run; the never-faster check has no tolerance.
MEAN_EXCESS_LIMIT_MS = 150.0


@dataclass(frozen=True)
class Scenario:
    """One load-step run of the tier: API type, rate (requests/s) and send window (s)."""

    name: str
    api_type: str
    rate: float
    duration_s: int

    @property
    def expected_requests(self) -> int:
        """Constant load sends at t0 + i/rate for every i/rate < duration."""
        return int(self.rate * self.duration_s)


SCENARIOS = [
    Scenario("completion-1qps", "completion", 1, 20),
    Scenario(f"completion-{TOP_RATE}qps", "completion", TOP_RATE, 10),
    Scenario("chat-1qps", "chat", 1, 20),
]


@dataclass(frozen=True)
class LoadRun:
    """What one run left behind: exit code, records, and vLLM's histogram deltas over the run."""

    scenario: Scenario
    exit_code: int
    records: list[dict[str, Any]]
    server_ttft: HistogramTotals
    server_e2e: HistogramTotals


@pytest.fixture(scope="module", params=SCENARIOS, ids=lambda s: s.name)
def load_run(
    request: pytest.FixtureRequest,
    vllm_server: VllmServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> LoadRun:
    """Run the load step once for the scenario, bracketed by /metrics scrapes."""
    scenario: Scenario = request.param
    out = tmp_path_factory.mktemp(f"load-{scenario.name}")
    ttft_before = scrape_histogram_totals(vllm_server, TTFT_METRIC)
    e2e_before = scrape_histogram_totals(vllm_server, E2E_METRIC)
    code = main(
        [
            "--out",
            str(out),
            "--base-url",
            vllm_server.base_url,
            "--model-name",
            vllm_server.model_name,
            "--tokenizer-dir",
            str(vllm_server.tokenizer_dir),
            "--api-type",
            scenario.api_type,
            "--rate",
            str(scenario.rate),
            "--duration",
            str(scenario.duration_s),
            "--input-tokens",
            str(INPUT_TOKENS),
            "--output-tokens",
            str(OUTPUT_TOKENS),
            "--num-workers",
            "2",
            "--warmup-requests",
            "0",
            "--seed",
            "0",
        ]
    )
    return LoadRun(
        scenario=scenario,
        exit_code=code,
        records=pq.read_table(out / "records.parquet").to_pylist(),
        server_ttft=scrape_histogram_totals(vllm_server, TTFT_METRIC).minus(ttft_before),
        server_e2e=scrape_histogram_totals(vllm_server, E2E_METRIC).minus(e2e_before),
    )


def test_load_vllm_run_every_request_ok(load_run: LoadRun) -> None:
    statuses = [(r["status"], r["error"]) for r in load_run.records if r["status"] != "ok"]

    assert load_run.exit_code == 0, statuses
    assert len(load_run.records) == load_run.scenario.expected_requests
    assert statuses == []


def test_load_vllm_run_server_reports_exact_token_counts(load_run: LoadRun) -> None:
    counts = {
        (
            r["prompt_tokens"],
            r["prompt_tokens_source"],
            r["output_tokens"],
            r["output_tokens_source"],
        )
        for r in load_run.records
    }

    assert counts == {(INPUT_TOKENS, "server", OUTPUT_TOKENS, "server")}


def test_load_vllm_run_multi_token_chunks_counted_by_token_ids(load_run: LoadRun) -> None:
    for r in load_run.records:
        chunk_tokens = r["chunk_tokens"]
        assert chunk_tokens is not None, r["request_index"]
        assert len(chunk_tokens) == len(r["chunk_offsets_us"])
        assert min(chunk_tokens) >= 1
        # The server coalesces (--stream-interval): counting chunks would give far fewer tokens.
        assert max(chunk_tokens) >= STREAM_INTERVAL
        assert len(chunk_tokens) <= 1 + math.ceil((OUTPUT_TOKENS - 1) / STREAM_INTERVAL)
        assert sum(chunk_tokens) == r["output_tokens"] == OUTPUT_TOKENS
        assert not r["output_tokens_mismatch"]


def test_load_vllm_run_latencies_positive_and_ordered(load_run: LoadRun) -> None:
    for r in load_run.records:
        offsets_us = r["chunk_offsets_us"]
        ttft_ns = r["first_token_ns"] - r["sent_ns"]
        e2e_ns = r["last_token_ns"] - r["sent_ns"]
        gaps_us = [b - a for a, b in itertools.pairwise(offsets_us)]

        assert r["scheduled_ns"] <= r["sent_ns"]
        assert 0 < ttft_ns <= e2e_ns <= r["end_ns"] - r["sent_ns"]
        assert min(gaps_us) >= 0
        assert sum(gaps_us) * 1000 <= e2e_ns
        # The record's first/last token times and its chunk offsets are one clock (µs floor).
        assert abs(offsets_us[0] * 1000 - ttft_ns) < 1000
        assert abs(offsets_us[-1] * 1000 - e2e_ns) < 1000


def _client_seconds(records: list[dict[str, Any]], metric: str) -> list[float]:
    end_field = {"ttft": "first_token_ns", "e2e": "last_token_ns"}[metric]
    return [(r[end_field] - r["sent_ns"]) / 1e9 for r in records if r["status"] == "ok"]


def _server_histogram(load_run: LoadRun, metric: str) -> HistogramTotals:
    return load_run.server_ttft if metric == "ttft" else load_run.server_e2e


@pytest.mark.parametrize("metric", ["ttft", "e2e"])
def test_load_vllm_run_client_never_faster_than_vllm_histogram(
    load_run: LoadRun, metric: str
) -> None:
    client = _client_seconds(load_run.records, metric)
    server = _server_histogram(load_run, metric)
    # Request by request the client's interval contains vLLM's, so at every bucket bound fewer
    # (or as many) client values fall below it: the client's CDF never lies above vLLM's.
    client_cdf = {le: sum(v <= le for v in client) for le in server.buckets}

    assert server.count == len(client)
    assert sum(client) >= server.sum_s - CLOCK_SLACK_S
    assert all(client_cdf[le] <= n for le, n in server.buckets.items()), (
        client_cdf,
        server.buckets,
    )


@pytest.mark.parametrize("metric", ["ttft", "e2e"])
def test_load_vllm_run_client_mean_excess_over_vllm_within_tolerance(
    load_run: LoadRun, metric: str, vllm_tier_notes: list[str]
) -> None:
    client = _client_seconds(load_run.records, metric)
    server = _server_histogram(load_run, metric)
    excess_ms = (sum(client) - server.sum_s) / len(client) * 1000
    seen = (
        f"{metric}: client mean {sum(client) / len(client) * 1000:.1f} ms, vLLM mean "
        f"{server.sum_s / server.count * 1000:.1f} ms, excess {excess_ms:.1f} ms/request "
        f"(limit {MEAN_EXCESS_LIMIT_MS:.0f} ms)"
    )
    vllm_tier_notes.append(f"{load_run.scenario.name} {seen}")

    assert excess_ms <= MEAN_EXCESS_LIMIT_MS, seen
