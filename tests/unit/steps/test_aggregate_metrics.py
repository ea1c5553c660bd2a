from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from steps.aggregate.metrics import PERCENTILES, IntHistogram, describe, scan_itl, scan_token_sums


def _assert_same(got: object, want: object) -> None:
    for field in ("count", "mean", "min", "max", "std"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12), field
    for q in PERCENTILES:
        assert got.percentiles[q] == pytest.approx(want.percentiles[q], rel=1e-12), q  # type: ignore[attr-defined]


def test_describe_one_to_hundred_matches_linear_percentiles() -> None:
    values = np.arange(1, 101, dtype=np.float64)[::-1].copy()
    stats = describe(values)
    assert (stats.count, stats.mean, stats.min, stats.max) == (100, 50.5, 1.0, 100.0)
    assert stats.std == pytest.approx(np.sqrt((100**2 - 1) / 12))
    assert stats.percentiles[50.0] == pytest.approx(50.5)
    assert stats.percentiles[90.0] == pytest.approx(90.1)
    assert stats.percentiles[99.0] == pytest.approx(99.01)
    assert stats.percentiles[99.9] == pytest.approx(99.901)


def test_describe_empty_is_null_not_zero() -> None:
    stats = describe(np.empty(0))
    assert stats.count == 0
    assert stats.mean is None and stats.min is None and stats.std is None
    assert set(stats.percentiles.values()) == {None}


def test_int_histogram_equals_raw_describe_including_outliers() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(-50, 5_000, 20_001).astype(np.int64)
    histogram = IntHistogram(cap=4_000)  # small cap: values above it and negatives stay raw
    for part in np.array_split(values, 7):
        histogram.add(part)
    _assert_same(histogram.describe(), describe(values.astype(np.float64)))


def test_int_histogram_merge_equals_histogram_of_union() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 300, 999), rng.integers(100, 9_000, 1_001)
    left, right = IntHistogram(), IntHistogram()
    left.add(a)
    right.add(b)
    left.merge(right)
    _assert_same(left.describe(), describe(np.concatenate([a, b]).astype(np.float64)))


def test_int_histogram_empty_is_null() -> None:
    assert IntHistogram().describe().count == 0
    assert IntHistogram().describe().mean is None


def _batch(offsets: list[list[int] | None], status: list[str], stage: list[int]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "stage": pa.array(stage, pa.int16()),
            "status": pa.array(status),
            "chunk_offsets_us": pa.array(offsets, pa.list_(pa.int32())),
        }
    )


def test_scan_itl_ragged_null_and_failed_rows_pool_only_inner_gaps() -> None:
    batch = _batch(
        [[100, 110, 130], None, [], [5], [1000, 1001], [0, 999_999]],
        ["ok", "ok", "ok", "ok", "ok", "timeout"],
        [0, 0, 0, 0, 1, 0],
    )
    itl = scan_itl([batch.slice(1), batch.slice(0, 1)])
    stage0, stage1 = itl[0].describe(), itl[1].describe()
    assert (stage0.count, stage0.min, stage0.max, stage0.mean) == (2, 10.0, 20.0, 15.0)
    assert (stage1.count, stage1.min) == (1, 1.0)


def test_scan_itl_equal_length_lists_fast_path_matches_diff() -> None:
    offsets = np.cumsum(np.arange(1, 13).reshape(3, 4), axis=1)
    itl = scan_itl([_batch(offsets.tolist(), ["ok"] * 3, [2] * 3)])
    want = np.diff(offsets, axis=1).ravel().astype(np.float64)
    _assert_same(itl[2].describe(), describe(want))


def test_scan_token_sums_unknown_lists_are_nan() -> None:
    tokens = pa.array([[1, 2, 3], None, [], [4, None], [7]], pa.list_(pa.int16()))
    batch = pa.RecordBatch.from_pydict({"chunk_tokens": tokens})
    sums = scan_token_sums([batch.slice(0, 2), batch.slice(2)])
    assert sums[0] == 6 and sums[2] == 0 and sums[4] == 7
    assert np.isnan(sums[1]) and np.isnan(sums[3])
