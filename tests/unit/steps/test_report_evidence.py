"""The per-metric verdict on exactly known estimates and rows (steps.report.evidence)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from steps.record_metrics import Slo
from steps.report.evidence import (
    ROW_COLUMNS,
    Estimate,
    RunScale,
    judge,
    run_estimates,
)
from steps.report.history import read_rows
from tests.fixtures.report_runs import write_records

# Five baseline nights at 100 +- ~1.6 (sample sd sqrt(2.5)), no within-run error: the prediction
# half-width is t(4 dof, 0.99) 3.747 x sqrt(2.5 x 1.2) = 6.49 %.
NIGHTS = [Estimate(v, 0.0) for v in (100.0, 102.0, 98.0, 101.0, 99.0)]
HALF = 3.747 * math.sqrt(2.5 * 1.2) / 100


@pytest.mark.parametrize(
    ("value", "status"),
    [(110.0, "regression"), (106.0, "inconclusive"), (103.0, "unchanged"), (90.0, "improvement")],
)
def test_judge_latency_needs_noise_and_tolerance(value: float, status: str) -> None:
    verdict = judge("ttft_p50_ms", Estimate(value, 0.0), NIGHTS, 0.05)
    assert verdict.status == status
    assert verdict.baseline == pytest.approx(100.0)
    assert verdict.effect == pytest.approx(value / 100 - 1)
    assert verdict.low == pytest.approx(value / 100 - 1 - HALF, abs=1e-4)
    assert verdict.high == pytest.approx(value / 100 - 1 + HALF, abs=1e-4)
    assert verdict.runs == 5 and verdict.relative


def test_judge_throughput_drop_is_a_regression() -> None:
    verdict = judge("output_tokens_per_s", Estimate(90.0, 0.0), NIGHTS, 0.05)
    assert verdict.status == "regression"
    assert "beyond both the noise and the 5% tolerance" in verdict.reason


def test_judge_within_run_error_sets_the_band_when_nights_agree() -> None:
    same = [Estimate(100.0, 2.0)] * 5  # no spread between nights: z, not t
    half = 2.326 * 2.0 * math.sqrt(1.2) / 100
    verdict = judge("ttft_p50_ms", Estimate(105.5, 2.0), same, 0.05)
    assert verdict.high == pytest.approx(0.055 + half, abs=1e-4)
    assert verdict.status == "regression"  # 5.5 % > 5.10 % and > 5 %
    assert "within-run noise" in verdict.reason


def test_judge_error_rate_in_points() -> None:
    clean = [Estimate(0.0, 0.002)] * 10
    verdict = judge("error_rate", Estimate(0.02, 0.008), clean, 0.005)
    assert verdict.status == "regression" and not verdict.relative
    assert verdict.effect == pytest.approx(0.02)
    assert "+2.00 pt vs the mean of 10 baseline runs" in verdict.reason
    assert judge("error_rate", Estimate(0.004, 0.0), clean, 0.005).status == "unchanged"


def test_judge_few_baseline_runs_need_three_times_the_tolerance() -> None:
    two = [Estimate(100.0, 1.0), Estimate(100.0, 1.0)]
    assert judge("ttft_p50_ms", Estimate(112.0, 1.0), two, 0.05).status == "inconclusive"
    verdict = judge("ttft_p50_ms", Estimate(116.0, 1.0), two, 0.05)
    assert verdict.status == "regression"
    assert "fewer than 3 baseline runs" in verdict.reason


def test_judge_without_data_is_not_applicable() -> None:
    assert judge("ttft_p50_ms", None, NIGHTS, 0.05).status == "n/a"
    assert judge("ttft_p50_ms", Estimate(1.0, 0.0), [], 0.05).status == "n/a"
    zero = judge("goodput_rps", Estimate(1.0, 0.0), [Estimate(0.0, 0.0)] * 3, 0.05)
    assert (zero.status, zero.reason) == ("n/a", "the baseline level is 0: no relative change")
    assert "no SLO set" in judge("goodput_rps", None, NIGHTS, 0.05).reason


def test_run_estimates_from_rows_exact(tmp_path: Path) -> None:
    path = tmp_path / "records.parquet"
    write_records(path, "r", requests=98, ttft_ms=100.0, itl_ms=10.0, output_tokens=16, failed=2)
    table = read_rows(path, ROW_COLUMNS, 1000, "test")
    scale = RunScale(window_s=100.0, achieved_rate=1.0, total=100)
    estimates = run_estimates(table, scale, Slo(ttft_ms=150.0))
    ttft = estimates["ttft_p50_ms"]
    assert ttft is not None and (ttft.value, ttft.se) == (pytest.approx(100.0), 0.0)
    itl = estimates["itl_p99_ms"]
    assert itl is not None and itl.value == pytest.approx(10.0)
    tpot = estimates["tpot_p50_ms"]
    assert tpot is not None and tpot.value == pytest.approx(10.0)
    error = estimates["error_rate"]
    smoothed = 2.5 / 101
    assert error is not None and error.value == pytest.approx(0.02)
    assert error.se == pytest.approx(math.sqrt(smoothed * (1 - smoothed) / 100))  # Jeffreys
    throughput = estimates["output_tokens_per_s"]
    assert throughput is not None and throughput.value == pytest.approx(98 * 16 / 100.0)
    goodput = estimates["goodput_rps"]
    assert goodput is not None and goodput.value == pytest.approx(0.98)  # 98 of 100 sent, 1/s
    attained = estimates["slo_attainment"]
    assert attained is not None and attained.value == pytest.approx(0.98)


def test_run_estimates_capped_rows_scale_throughput(tmp_path: Path) -> None:
    path = tmp_path / "records.parquet"
    write_records(path, "r", requests=100, ttft_ms=100.0, itl_ms=10.0, output_tokens=16)
    table = read_rows(path, ROW_COLUMNS, 25, "test")
    assert table.num_rows == 25
    estimates = run_estimates(table, RunScale(100.0, 1.0, 100), Slo())
    throughput = estimates["output_tokens_per_s"]
    assert throughput is not None and throughput.value == pytest.approx(16.0)
    assert estimates["goodput_rps"] is None and estimates["slo_attainment"] is None
