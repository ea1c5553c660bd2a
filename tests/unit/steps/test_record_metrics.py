"""steps.record_metrics: every metric read from records, on exactly known inputs."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from steps.record_metrics import (
    LATENCIES_OVER_SENT,
    TIME_COLUMNS,
    Slo,
    achieved_rate,
    as_float,
    chunk_gaps,
    chunk_token_sums,
    goodput,
    is_saturated,
    latencies_ns,
    ok_rows,
    on_time_line,
    output_token_mismatches,
    per_second,
    percentiles,
    share,
    slo_attainment,
    slo_met,
    ttft_ns,
)
from steps.records import SATURATION_DELAY_MS

NAN = math.nan


def _times(**columns: list[float]) -> dict[str, np.ndarray]:
    return {name: np.array(values, dtype=np.float64) for name, values in columns.items()}


def test_latencies_ns_known_request_gives_each_definition() -> None:
    times = _times(
        scheduled_ns=[1_000.0],
        sent_ns=[1_500.0],
        first_token_ns=[4_500.0],
        last_token_ns=[10_500.0],
        end_ns=[11_000.0],
    )
    got = latencies_ns(times, np.array([4.0]))
    assert {name: float(values[0]) for name, values in got.items()} == {
        "ttft": 3_000.0,
        "tpot": 2_000.0,  # (10_500 - 4_500) / (4 - 1)
        "ntpot": 2_250.0,  # 9_000 / 4
        "e2e": 9_000.0,
        "scheduled_e2e": 9_500.0,
        "schedule_delay": 500.0,
        "request_latency": 9_500.0,
    }


def test_latencies_ns_unreached_times_and_short_outputs_are_nan() -> None:
    times = _times(
        scheduled_ns=[0.0, 0.0, 0.0],
        sent_ns=[NAN, 10.0, 10.0],
        first_token_ns=[NAN, NAN, 30.0],
        last_token_ns=[NAN, NAN, 30.0],
        end_ns=[5.0, 20.0, 40.0],
    )
    got = latencies_ns(times, np.array([NAN, 0.0, 1.0]))
    assert np.isnan(got["schedule_delay"][0]) and got["schedule_delay"][1] == 10.0
    assert np.isnan(got["ttft"][:2]).all() and got["ttft"][2] == 20.0
    # tpot needs > 1 token, ntpot > 0 tokens: a one-token answer has ntpot, no tpot.
    assert np.isnan(got["tpot"]).all()
    assert np.isnan(got["ntpot"][:2]).all() and got["ntpot"][2] == 20.0


def test_ttft_ns_scalar_and_array_agree() -> None:
    assert ttft_ns(1_000, 1_750) == 750
    got = ttft_ns(np.array([1_000.0, NAN]), np.array([1_750.0, 2_000.0]))
    assert got[0] == 750.0 and np.isnan(got[1])


def test_latencies_over_sent_is_only_the_client_side_delay() -> None:
    assert frozenset({"schedule_delay"}) == LATENCIES_OVER_SENT


def test_on_time_line_shifts_each_row_by_its_own_t0_exactly() -> None:
    origin = 1_795_000_000_000_000_000  # epoch ns: float64 alone would lose ~256 ns here
    table = pa.table(
        {
            "wall_start_ns": pa.array([origin, origin + 1_000_000_001], pa.int64()),
            "sent_ns": pa.array([7, None], pa.int64()),
            "end_ns": pa.array([9, 3], pa.int64()),
        }
    )
    got = on_time_line(table, origin, ["sent_ns", "end_ns"])
    assert got["sent_ns"][0] == 7.0 and np.isnan(got["sent_ns"][1])
    assert got["end_ns"].tolist() == [9.0, 1_000_000_004.0]
    assert "scheduled_ns" in TIME_COLUMNS and len(TIME_COLUMNS) == 5


def test_as_float_and_ok_rows_read_nulls_and_statuses() -> None:
    values = as_float(
        pa.chunked_array([pa.array([1, None], pa.int32()), pa.array([3], pa.int32())])
    )
    assert values[0] == 1.0 and np.isnan(values[1]) and values[2] == 3.0
    status = pa.array(["ok", "timeout", "ok", "http_error"])
    assert ok_rows(status).tolist() == [True, False, True, False]


def test_chunk_gaps_ragged_null_and_single_lists_never_span_two_requests() -> None:
    piece = pa.array([[100, 110, 130], None, [], [5], [1000, 1001]], pa.list_(pa.int32()))
    assert chunk_gaps(piece).tolist() == [10, 20, 1]


def test_chunk_gaps_equal_lengths_take_the_strided_path() -> None:
    piece = pa.array([[0, 2, 5], [10, 11, 20]], pa.list_(pa.int32()))
    assert chunk_gaps(piece).tolist() == [2, 3, 1, 9]


def test_chunk_token_sums_unknown_is_nan_empty_is_zero() -> None:
    piece = pa.array([[1, 2, 3], None, [], [4, None], [7]], pa.list_(pa.int16()))
    sums = chunk_token_sums(piece)
    assert sums[0] == 6.0 and sums[2] == 0.0 and sums[4] == 7.0
    assert np.isnan(sums[1]) and np.isnan(sums[3])


def test_achieved_rate_counts_sent_rows_over_the_send_window() -> None:
    # Four rows, one never sent (connect_error): 3 requests offered over 2 s.
    sent = np.array([0.0, 0.5e9, NAN, 1.5e9])
    assert achieved_rate(sent, 2.0) == 1.5


def test_achieved_rate_without_window_spans_the_sends() -> None:
    sent = np.array([0.0, NAN, 1e9, 2e9])
    assert achieved_rate(sent, None) == 1.0  # (3 - 1) sends after the first, over 2 s
    assert achieved_rate(np.array([5.0, NAN]), None) is None
    assert achieved_rate(np.array([5.0, 5.0]), None) is None


def test_is_saturated_above_the_bound_only() -> None:
    assert not is_saturated(None)
    assert not is_saturated(SATURATION_DELAY_MS)
    assert is_saturated(SATURATION_DELAY_MS + 0.001)


@pytest.mark.parametrize("window", [0.0, None])
def test_achieved_rate_empty_window_falls_back_to_sends(window: float | None) -> None:
    assert achieved_rate(np.array([0.0, 4e9]), window) == pytest.approx(0.25)


def test_slo_met_needs_ok_and_every_set_bound() -> None:
    ms = 1e6
    latencies = {
        "ttft": np.array([50, 50, 150, 50, 50]) * ms,
        "tpot": np.array([10, 30, 10, NAN, 10]) * ms,  # NaN: a one-token answer
        "e2e": np.array([900, 900, 900, 900, 900]) * ms,
    }
    ok = np.array([True, True, True, True, False])
    met = slo_met(latencies, ok, Slo(ttft_ms=100, tpot_ms=20))
    assert met.tolist() == [True, False, False, True, False]
    assert slo_met(latencies, ok, Slo(e2e_ms=899)).tolist() == [False] * 5
    assert slo_attainment(met) == pytest.approx(2 / 5)
    assert slo_attainment(met[:0]) is None
    assert not Slo().is_set and Slo(e2e_ms=1).is_set


def test_goodput_counts_met_requests_over_the_send_window() -> None:
    sent = np.array([0.0, 1e9, 2e9, NAN])
    met = np.array([True, False, True, False])
    assert goodput(met, sent, 4.0) == pytest.approx(0.5)
    # No window: the sends' rate ((3 - 1) / 2 s), two thirds of them met.
    assert goodput(met, sent, None) == pytest.approx(1.0 * 2 / 3)


def test_output_token_mismatches_counts_only_rows_where_both_are_known() -> None:
    usage = np.array([3.0, 4.0, NAN, 5.0, 2.0])
    chunks = np.array([3.0, 5.0, 1.0, NAN, 0.0])
    assert output_token_mismatches(usage, chunks) == 2  # rows 1 and 4; 2 and 3 unknown


def test_percentiles_are_the_linear_method_between_order_statistics() -> None:
    values = np.array([40.0, 10.0, 30.0, 20.0])
    # type 7: virtual index q (n - 1); p50 = 25 (halfway 20..30), p99 = 30 + 0.97 * 10.
    assert percentiles(values, [0, 50, 99, 100]).tolist() == pytest.approx([10, 25, 39.7, 40])
    assert values.tolist() == [40.0, 10.0, 30.0, 20.0]  # not reordered unless asked


def test_share_and_per_second_are_none_without_a_whole_or_a_window() -> None:
    assert share(1, 4) == 0.25
    assert share(0, 0) is None
    assert per_second(30.0, 10.0) == 3.0
    assert per_second(30.0, 0.0) is None
    assert per_second(30.0, None) is None
