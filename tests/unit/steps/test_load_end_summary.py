"""steps.load.end_summary: the end-of-run numbers are aggregate's numbers for the same records."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from steps.load.end_summary import format_summary, summarize
from steps.records import RECORD_SCHEMA
from tests.helpers.aggregate_records import aggregate, record_row, stage_window, write_shard


def _rows_with_a_connect_error() -> list[dict[str, object]]:
    chunk_tokens = ([1, 1, 2], [1, 1, 1], None)  # usage says 3: one mismatch, one unknown
    rows = [
        record_row(i, ttft_ms=50.0, gaps_ms=(10.0, 10.0), chunk_tokens=tokens)
        for i, tokens in enumerate(chunk_tokens)
    ]
    never_sent = record_row(3, status="connect_error", gaps_ms=(), http_status=None)
    never_sent.update(sent_ns=None, end_ns=never_sent["scheduled_ns"], error="refused")
    return [*rows, never_sent]


def test_summarize_connect_error_not_sent_rate_agrees_with_aggregate(tmp_path: Path) -> None:
    rows = _rows_with_a_connect_error()
    stages = [stage_window(0, 2.0, 0.0, 2.0, 4.0)]
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    summary = summarize(table, stages, client_cpu_s=0.4)
    assert summary.counts["ok"] == 3 and summary.counts["connect_error"] == 1
    assert summary.failed == 1
    assert summary.achieved_rate == [1.5]  # 3 sent in a 2 s window; the refused one was not
    assert summary.ttft_ms == (50.0, 50.0)
    assert summary.itl_ms == (10.0, 10.0)
    assert summary.schedule_delay_ms == (0.5, 0.5)  # over the sent rows only
    assert (summary.output_mismatches, summary.prompt_mismatches) == (1, 0)
    shard = write_shard(tmp_path / "run", rows, stages)
    overall = aggregate(tmp_path / "summary", shard / "records.parquet")
    assert overall["stages"][0]["achieved_rate"] == summary.achieved_rate[0]
    assert overall["overall"]["latency_ms"]["ttft"]["p50"] == summary.ttft_ms[0]
    assert overall["overall"]["latency_ms"]["itl"]["p50"] == summary.itl_ms[0]
    assert overall["overall"]["tokens"]["output_token_mismatches"] == summary.output_mismatches


def test_format_summary_shows_sent_rate_against_requested() -> None:
    table = pa.Table.from_pylist(_rows_with_a_connect_error(), schema=RECORD_SCHEMA)
    text = format_summary(summarize(table, [stage_window(0, 2.0, 0.0, 2.0, 4.0)], 0.4))
    assert "requests        4  (ok 3  connect_error 1)" in text
    assert "achieved/req'd  stage 0: 1.50/2 (requests/s sent)" in text
    assert "client CPU      0.40 s (100.00 ms/request)" in text
    assert "WARNING" not in text


def test_format_summary_resent_requests_shown_only_when_any() -> None:
    table = pa.Table.from_pylist(_rows_with_a_connect_error(), schema=RECORD_SCHEMA)
    stages = [stage_window(0, 2.0, 0.0, 2.0, 4.0)]
    text = format_summary(summarize(table, stages, 0.4, resent_requests=2))
    line = "requests        4  (ok 3  connect_error 1; 2 resent after a stale keep-alive close)"
    assert line in text
    assert "resent" not in format_summary(summarize(table, stages, 0.4))
