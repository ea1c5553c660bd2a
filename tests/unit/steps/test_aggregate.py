from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps.aggregate.__main__ import main
from steps.records import RECORD_SCHEMA
from tests.helpers.aggregate_records import (
    WALL_NS,
    S,
    aggregate,
    record_row,
    stage_window,
    write_shard,
)


def test_aggregate_known_values_exact_percentiles(tmp_path: Path) -> None:
    # Request i (1..100): TTFT i ms, one chunk gap of i ms, 2 output tokens, 0.5 ms send delay.
    rows = [record_row(i, ttft_ms=i, gaps_ms=(i,)) for i in range(1, 101)]
    summary = aggregate(tmp_path / "out", write_shard(tmp_path / "r", rows))
    latency = summary["overall"]["latency_ms"]
    for name in ("ttft", "itl", "tpot", "ntpot"):  # each equals i ms per request
        stats = latency[name]
        assert stats["count"] == 100
        assert (stats["min"], stats["max"], stats["mean"]) == pytest.approx((1, 100, 50.5))
        assert stats["p50"] == pytest.approx(50.5)
        assert stats["p90"] == pytest.approx(90.1)
        assert stats["p95"] == pytest.approx(95.05)
        assert stats["p99"] == pytest.approx(99.01)
        assert stats["p99.9"] == pytest.approx(99.901)
        assert stats["std"] == pytest.approx(((100**2 - 1) / 12) ** 0.5)
    assert latency["e2e"]["p50"] == pytest.approx(101.0)
    assert latency["scheduled_e2e"]["p50"] == pytest.approx(101.5)
    assert latency["schedule_delay"]["max"] == pytest.approx(0.5)


@pytest.mark.parametrize("with_run_json", [True, False])
def test_aggregate_two_shards_equal_their_union(tmp_path: Path, with_run_json: bool) -> None:
    # Shard B's pod started 2 s after shard A's: its times are relative to its own t0.
    shift_ns = 2 * S
    a = [record_row(i, ttft_ms=20 + i % 7, gaps_ms=(5, 6 + i % 3)) for i in range(0, 60, 2)]
    b = [record_row(i, ttft_ms=30 + i % 5, gaps_ms=(7, 9, i % 4)) for i in range(1, 60, 2)]
    b_shard = [r | {"wall_start_ns": WALL_NS + shift_ns} for r in b]
    for row in b_shard:
        for key in ("scheduled_ns", "sent_ns", "first_token_ns", "last_token_ns", "end_ns"):
            row[key] -= shift_ns
    runs = {
        "a": [stage_window(0, 0.5, 0, 60, 61)],
        "b": [stage_window(0, 0.5, -2, 58, 59)],
        "u": [stage_window(0, 1.0, 0, 60, 61)],
    }
    if not with_run_json:
        runs = {}
    shard_a = write_shard(tmp_path / "a", a, runs.get("a"))
    shard_b = write_shard(tmp_path / "b", b_shard, runs.get("b"), WALL_NS + shift_ns)
    union = write_shard(tmp_path / "u", a + b, runs.get("u"))
    merged = aggregate(tmp_path / "out-ab", shard_a, shard_b)
    single = aggregate(tmp_path / "out-u", union)
    assert merged["run"]["shards"] == 2 and single["run"]["shards"] == 1
    assert "config" not in merged["run"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "out-ab" / "summary.parquet"),
        pd.read_parquet(tmp_path / "out-u" / "summary.parquet"),
        check_exact=False,
        rtol=1e-9,
    )
    assert merged["overall"]["latency_ms"]["itl"]["count"] == 30 * 2 + 30 * 3


def test_aggregate_error_classes_counted_latencies_over_ok_only(tmp_path: Path) -> None:
    rows = [record_row(i, ttft_ms=10) for i in range(6)]
    rows += [
        record_row(6, status="http_error", http_status=500, error="boom", gaps_ms=()),
        record_row(7, status="http_error", http_status=500, error="boom", gaps_ms=()),
        record_row(8, status="timeout", http_status=None, error="read timeout", gaps_ms=(10, 5000)),
        record_row(9, status="connect_error", http_status=None, error="refused", gaps_ms=()),
        record_row(10, status="protocol_error", http_status=200, error="bad json", gaps_ms=(3,)),
        record_row(11, status="cancelled", http_status=None, gaps_ms=()),
    ]
    out = tmp_path / "out"
    overall = aggregate(out, write_shard(tmp_path / "r", rows))["overall"]
    assert overall["requests"] == {
        "total": 12,
        "ok": 6,
        "http_error": 2,
        "timeout": 1,
        "connect_error": 1,
        "protocol_error": 1,
        "cancelled": 1,
    }
    assert (overall["success_rate"], overall["error_rate"]) == (0.5, 0.5)
    assert overall["latency_ms"]["ttft"]["count"] == 6
    assert overall["latency_ms"]["itl"]["max"] == pytest.approx(10.0)  # timeout's 5 s gap left out
    assert overall["latency_ms"]["schedule_delay"]["count"] == 12  # every sent request
    failures = json.loads((out / "summary_lifecycle_metrics.json").read_text())["failures"]
    assert failures["count"] == 6
    assert failures["by_label"]["500 - Internal Server Error"]["count"] == 2
    assert failures["by_label"]["500 - Internal Server Error"]["messages"] == [
        {"message": "boom", "count": 2}
    ]
    assert failures["by_label"]["Timeout"]["count"] == 1


def test_aggregate_no_ok_requests_and_empty_stage_give_nulls(tmp_path: Path) -> None:
    rows = [record_row(i, status="connect_error", http_status=None, gaps_ms=()) for i in range(3)]
    rows.append(record_row(3, output_tokens=1, gaps_ms=(), stage=1, scheduled_ns=12 * S))
    stages = [
        stage_window(0, 1.0, 0, 3, 4),
        stage_window(1, 1.0, 12, 13, 14),
        stage_window(2, 5.0, 20, 21, 22),
    ]
    summary = aggregate(tmp_path / "out", write_shard(tmp_path / "r", rows, stages))
    first, second, empty = summary["stages"]
    assert first["latency_ms"]["ttft"] == {
        "count": 0,
        "mean": None,
        "min": None,
        "max": None,
        "std": None,
        "p50": None,
        "p90": None,
        "p95": None,
        "p99": None,
        "p99.9": None,
    }
    assert first["tokens"]["prompt_tokens_mean"] is None
    assert first["load_generator_saturated"] is False
    assert second["latency_ms"]["ttft"]["count"] == 1
    assert second["latency_ms"]["tpot"]["count"] == 0  # one output token: no TPOT
    assert second["latency_ms"]["ntpot"]["count"] == 1
    assert empty["requests"]["total"] == 0 and empty["success_rate"] is None
    assert empty["throughput"]["requests_per_s"] == 0.0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert (
        "stage_0_lifecycle_metrics.json" in files and "stage_2_lifecycle_metrics.json" not in files
    )


def test_aggregate_stage_windows_throughput_and_rates(tmp_path: Path) -> None:
    stage0 = [record_row(i, prompt_tokens=100, gaps_ms=(10, 10, 10)) for i in range(10)]  # 0..9 s
    stage1 = [
        record_row(i, stage=1, scheduled_ns=20 * S + i * S // 2, gaps_ms=(10,)) for i in range(8)
    ]
    stages = [stage_window(0, 1.0, 0, 10, 12.5), stage_window(1, 2.0, 20, 24, 25)]
    summary = aggregate(tmp_path / "out", write_shard(tmp_path / "r", stage0 + stage1, stages))
    first, second = summary["stages"]
    assert (first["stage"], first["rate"], first["duration_s"]) == (0, 1.0, 10.0)
    assert first["window_s"] == pytest.approx(12.5)
    assert first["throughput"]["requests_per_s"] == pytest.approx(10 / 12.5)
    assert first["throughput"]["input_tokens_per_s"] == pytest.approx(1000 / 12.5)
    assert first["throughput"]["output_tokens_per_s"] == pytest.approx(40 / 12.5)
    assert (first["requested_rate"], first["achieved_rate"]) == pytest.approx((1.0, 1.0))
    assert second["achieved_rate"] == pytest.approx(8 / 4)
    overall = summary["overall"]
    assert overall["window_s"] == pytest.approx(25.0)
    assert overall["achieved_rate"] == pytest.approx(18 / 14)
    assert overall["requested_rate"] == pytest.approx((1.0 * 10 + 2.0 * 4) / 14)


def test_aggregate_without_run_json_uses_rows_for_window(tmp_path: Path) -> None:
    rows = [record_row(i, gaps_ms=(10,), delay_ms=0) for i in range(5)]  # sent at 0..4 s
    summary = aggregate(tmp_path / "out", write_shard(tmp_path / "r", rows))
    overall = summary["overall"]
    assert overall["requested_rate"] is None
    assert overall["achieved_rate"] == pytest.approx(1.0)  # (n - 1) / (last - first send)
    assert overall["window_s"] == pytest.approx(4.0 + 0.060 + 0.0001)  # to the last end_ns
    assert summary["run"] == {"run_id": "20261127T000000Z-abcdef", "shards": 1}


@pytest.mark.parametrize(("delay_ms", "saturated"), [(20.0, True), (0.5, False)])
def test_aggregate_saturation_flag_follows_schedule_delay_p99(
    tmp_path: Path, delay_ms: float, saturated: bool
) -> None:
    rows = [record_row(i, delay_ms=delay_ms if i >= 95 else 0.1) for i in range(100)]
    overall = aggregate(tmp_path / "out", write_shard(tmp_path / "r", rows))["overall"]
    assert overall["load_generator_saturated"] is saturated


def test_aggregate_token_sources_and_mismatches(tmp_path: Path) -> None:
    rows = [
        record_row(0, gaps_ms=(1, 1), chunk_tokens=[1, 1, 1]),
        record_row(1, gaps_ms=(1, 1), chunk_tokens=[1, 2, 1]),  # 4 != 3 output tokens
        record_row(2, gaps_ms=(1, 1), chunk_tokens=None),  # unknown: not compared
        record_row(3, gaps_ms=(1, 1), chunk_tokens=[1, None, 1]),  # unknown item: not compared
    ]
    rows[0]["output_tokens_source"] = "chunks"
    overall = aggregate(tmp_path / "out", write_shard(tmp_path / "r", rows))["overall"]
    tokens = overall["tokens"]
    assert tokens["output_token_mismatches"] == 1
    assert tokens["output_tokens_source"] == {"server": 3, "chunks": 1}
    assert tokens["prompt_tokens_source"] == {"server": 4}
    assert (tokens["prompt_tokens_mean"], tokens["output_tokens_mean"]) == (512.0, 3.0)


def test_aggregate_cached_tokens_mean_and_token_weighted_ratio(tmp_path: Path) -> None:
    rows = [record_row(i, prompt_tokens=p) for i, p in enumerate((100, 300, 600, 50))]
    for row, cached in zip(rows, (100, 0, 200, None), strict=True):
        row["cached_tokens"] = cached  # the last server said nothing: left out of both
    rows.append(record_row(4, status="timeout", gaps_ms=()) | {"cached_tokens": 999})
    out = tmp_path / "out"
    tokens = aggregate(out, write_shard(tmp_path / "r", rows))["overall"]["tokens"]
    assert tokens["cached_tokens_mean"] == pytest.approx(100.0)  # ok rows only
    assert tokens["cached_tokens_ratio"] == pytest.approx(300 / 1000)
    prompt = json.loads((out / "summary_lifecycle_metrics.json").read_text())["successes"]
    assert (prompt["prompt_tokens"]["cached"], prompt["prompt_tokens"]["total"]) == (300, 1050)
    tidy = pd.read_parquet(out / "summary.parquet")
    ratio = tidy[(tidy.metric == "cached_tokens") & (tidy.stat == "ratio") & (tidy.stage == -1)]
    assert ratio.value.tolist() == [pytest.approx(0.3)]


def test_aggregate_records_without_cached_tokens_column_read_as_unknown(tmp_path: Path) -> None:
    """Records written before the column existed still aggregate; the figures are null."""
    directory = tmp_path / "r"
    write_shard(directory, [record_row(0), record_row(1)])
    table = pq.read_table(directory / "records.parquet").drop_columns(["cached_tokens"])
    pq.write_table(table, directory / "records.parquet")
    tokens = aggregate(tmp_path / "out", directory)["overall"]["tokens"]
    assert (tokens["cached_tokens_mean"], tokens["cached_tokens_ratio"]) == (None, None)
    assert tokens["prompt_tokens_mean"] == 512.0


def test_aggregate_lifecycle_json_has_inference_perf_keys_in_seconds(tmp_path: Path) -> None:
    rows = [record_row(i, ttft_ms=i, gaps_ms=(i,)) for i in range(1, 101)]
    out = tmp_path / "out"
    aggregate(out, write_shard(tmp_path / "r", rows, [stage_window(0, 1.0, 0, 100, 101)]))
    for name in ("summary_lifecycle_metrics.json", "stage_0_lifecycle_metrics.json"):
        report = json.loads((out / name).read_text())
        assert set(report) >= {"load_summary", "successes", "failures"}
        load = report["load_summary"]
        assert set(load) >= {"count", "schedule_delay", "send_duration", "achieved_rate"}
        assert set(load) >= {"requested_rate"}
        latency = report["successes"]["latency"]
        assert set(latency) == {
            "request_latency",
            "normalized_time_per_output_token",
            "time_per_output_token",
            "time_to_first_token",
            "inter_token_latency",
        }
        ttft = latency["time_to_first_token"]
        assert list(ttft) == [
            "mean", "min", "max", "p0.1", "p1", "p5", "p10", "p25",
            "median", "p75", "p90", "p95", "p99", "p99.9",
        ]  # fmt: skip
        assert ttft["median"] == pytest.approx(0.0505)  # seconds
        assert latency["inter_token_latency"]["p99"] == pytest.approx(0.09901)
        throughput = report["successes"]["throughput"]
        assert throughput["requests_per_sec"] == pytest.approx(100 / 101)
        assert set(throughput) >= {"input_tokens_per_sec", "output_tokens_per_sec"}
        assert report["successes"]["output_tokens"]["total"] == 200


def test_aggregate_main_end_to_end_writes_all_outputs(tmp_path: Path) -> None:
    rows = [record_row(i) for i in range(4)] + [record_row(4 + i, stage=1) for i in range(4)]
    records = write_shard(
        tmp_path / "r", rows, [stage_window(0, 1.0, 0, 4, 5), stage_window(1, 1.0, 4, 8, 9)]
    )
    out = tmp_path / "out"
    summary = aggregate(out, records / "records.parquet")  # a file path works like its dir
    assert sorted(p.name for p in out.iterdir()) == [
        "stage_0_lifecycle_metrics.json",
        "stage_1_lifecycle_metrics.json",
        "summary.json",
        "summary.parquet",
        "summary_lifecycle_metrics.json",
    ]
    assert summary["run"]["scenario"] == "baseline" and [s["stage"] for s in summary["stages"]] == [
        0,
        1,
    ]
    table = pq.read_table(out / "summary.parquet")
    assert table.schema.names == ["stage", "metric", "stat", "value", "unit"]
    assert table.schema.field("stage").type == pa.int16()
    frame = table.to_pandas()
    assert set(frame["stage"]) == {-1, 0, 1}
    assert set(frame["unit"]) <= {"ms", "1/s", "count", "ratio"}
    ttft_p99 = frame[(frame.stage == -1) & (frame.metric == "ttft") & (frame.stat == "p99")]
    assert ttft_p99["value"].tolist() == pytest.approx(
        [summary["overall"]["latency_ms"]["ttft"]["p99"]]
    )


def test_aggregate_missing_path_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["--records", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aggregate: ") and str(missing) in err[0]


def test_aggregate_missing_column_exits_2_naming_file_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pa.Table.from_pylist([record_row(0)], schema=RECORD_SCHEMA).drop_columns(["sent_ns"])
    (tmp_path / "r").mkdir()
    pq.write_table(table, tmp_path / "r" / "records.parquet")
    assert main(["--records", str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'sent_ns'" in err[0] and "records.parquet" in err[0]
    assert "missing" in err[0]


def test_aggregate_mistyped_column_exits_2_naming_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pa.Table.from_pylist([record_row(0)], schema=RECORD_SCHEMA)
    at = table.schema.get_field_index("chunk_offsets_us")
    column = table.column(at).cast(pa.list_(pa.int64()))
    table = table.set_column(at, pa.field("chunk_offsets_us", column.type), column)
    (tmp_path / "r").mkdir()
    pq.write_table(table, tmp_path / "r" / "records.parquet")
    assert main(["--records", str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'chunk_offsets_us'" in err and "int64" in err and "int32" in err
    assert "\n" not in err


def test_aggregate_not_parquet_and_bad_run_json_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "records.parquet"
    bogus.write_text("not parquet")
    assert main(["--records", str(bogus), "--out", str(tmp_path / "out")]) == 2
    assert "not readable Parquet" in capsys.readouterr().err
    records = write_shard(tmp_path / "r", [record_row(0)], [stage_window(0, 1.0, 0, 1, 2)])
    run = json.loads((records / "run.json").read_text())
    del run["stages"][0]["end_ns"]
    (records / "run.json").write_text(json.dumps(run))
    assert main(["--records", str(records), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "run.json" in err and "stages.0.end_ns" in err and "\n" not in err


def test_aggregate_run_json_not_utf8_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_shard(tmp_path / "r", [record_row(0)], [stage_window(0, 1.0, 0, 1, 2)])
    (records / "run.json").write_bytes(b"\xff\xfe{")
    assert main(["--records", str(records), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aggregate: run file") and "run.json" in err and "\n" not in err


def test_aggregate_records_damaged_past_the_footer_exits_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_shard(tmp_path / "r", [record_row(i) for i in range(2000)])
    records = tmp_path / "r" / "records.parquet"
    data = bytearray(records.read_bytes())
    # Keep the magic bytes and the footer (the schema check passes); damage the data pages.
    middle = len(data) // 3
    data[middle : middle + 4096] = b"\xff" * 4096
    records.write_bytes(bytes(data))
    assert main(["--records", str(records), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("aggregate: cannot decode the records in ")
    assert str(records) in err[-1]


def test_aggregate_slo_goodput_counts_ok_requests_within_every_bound(tmp_path: Path) -> None:
    rows = [record_row(i, ttft_ms=50.0 if i < 6 else 150.0, gaps_ms=(10, 10)) for i in range(9)]
    rows.append(record_row(9, status="http_error", http_status=503, gaps_ms=()))
    stages = [stage_window(0, 1.0, 0, 10, 12)]
    flags = ["--slo-ttft-ms", "100", "--slo-tpot-ms", "10", "--slo-e2e-ms", ""]
    summary = aggregate(tmp_path / "out", write_shard(tmp_path / "r", rows, stages), flags=flags)
    assert summary["slo"] == {"ttft_ms": 100.0, "tpot_ms": 10.0, "e2e_ms": None}
    overall = summary["overall"]
    assert overall["goodput"] == pytest.approx(6 / 10)  # over the 10 s send window
    assert overall["slo_attainment"] == pytest.approx(6 / 10)  # the failed row counts, unmet
    tight = aggregate(
        tmp_path / "tight", tmp_path / "r", flags=["--slo-tpot-ms", "9.9"]
    )  # every request's TPOT is 10 ms
    assert tight["overall"]["goodput"] == 0.0


def test_aggregate_without_slo_goodput_is_null(tmp_path: Path) -> None:
    summary = aggregate(tmp_path / "out", write_shard(tmp_path / "r", [record_row(0)]))
    assert summary["slo"] == {"ttft_ms": None, "tpot_ms": None, "e2e_ms": None}
    assert (summary["overall"]["goodput"], summary["overall"]["slo_attainment"]) == (None, None)


@pytest.mark.parametrize(("raw", "message"), [("abc", "expected a number"), ("0", "must be > 0")])
def test_aggregate_bad_slo_flag_exits_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: str, message: str
) -> None:
    shard = write_shard(tmp_path / "r", [record_row(0)])
    code = main(["--records", str(shard), "--out", str(tmp_path / "o"), "--slo-ttft-ms", raw])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"aggregate: --slo-ttft-ms: {message}")
