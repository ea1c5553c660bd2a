"""steps.summary_model: summary.json round trips, older summaries load, key metrics read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.errors import UsageError
from steps.summary_model import (
    KEY_METRICS,
    LATENCY_METRICS,
    OUTPUT_METRIC_NAMES,
    REGRESSION_METRIC_NAMES,
    SLA_METRIC_NAMES,
    parse_summary,
)
from tests.fixtures.report_runs import build_run

RUN_1 = "20261118T020000Z-aaaaaa"


def test_summary_written_by_aggregate_round_trips_byte_for_byte(tmp_path: Path) -> None:
    text = (build_run(tmp_path, RUN_1, failed=2).summary_dir / "summary.json").read_text()
    summary = parse_summary(text, "summary.json")
    assert summary.to_json() == text
    assert summary.overall.latency_ms.ttft.p50 == pytest.approx(100.0)
    assert summary.run.base_url == "http://vllm.models.svc:8000"
    assert summary.stages[0].stage == 0 and summary.stages[0].rate == 1.0


def test_summary_of_a_run_without_run_json_or_completeness_loads(tmp_path: Path) -> None:
    # The previous layout: `run` has only what the records say, no completeness, no shards.
    document = json.loads((build_run(tmp_path, RUN_1).summary_dir / "summary.json").read_text())
    document["run"] = {"run_id": RUN_1}
    document["overall"]["added_by_a_newer_aggregate"] = {"x": 1}
    summary = parse_summary(json.dumps(document), "old")
    assert (summary.run.complete, summary.run.shards) == (None, 1)
    assert "complete" not in summary.to_json()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "h: not a summary.json (steps/CONTRACTS.md): (root): "),
        ('{"run": {}, "stages": []}', "h: not a summary.json (steps/CONTRACTS.md): overall: Field"),
        ("{", "h: not a summary.json (steps/CONTRACTS.md): (root): Invalid JSON"),
    ],
)
def test_parse_summary_wrong_layout_is_one_line(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_summary(text, "h")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_key_metrics_read_typed_fields(tmp_path: Path) -> None:
    text = build_run(tmp_path, RUN_1, ttft_ms=120.0, failed=10).summary_dir / "summary.json"
    overall = parse_summary(text.read_text(), "s").overall
    assert KEY_METRICS["ttft_p99_ms"].read(overall) == pytest.approx(120.0)
    assert KEY_METRICS["error_rate"].read(overall) == pytest.approx(0.2)
    assert KEY_METRICS["itl_p50_ms"].read(overall) == pytest.approx(10.0)
    assert KEY_METRICS["output_tokens_per_s"].better == "higher"
    assert KEY_METRICS["e2e_p50_ms"].better == "lower"


def test_metric_name_lists_name_key_metrics_only() -> None:
    for names in (SLA_METRIC_NAMES, REGRESSION_METRIC_NAMES, OUTPUT_METRIC_NAMES):
        assert set(names) <= set(KEY_METRICS)
    assert LATENCY_METRICS == (
        "ttft",
        "itl",
        "tpot",
        "ntpot",
        "e2e",
        "scheduled_e2e",
        "schedule_delay",
    )
