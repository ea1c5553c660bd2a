"""The saturation rule one stage is read by (load step's early stop and report's capacity)."""

from __future__ import annotations

import pytest

from steps.stage_saturation import StageReading, saturation_signs


@pytest.mark.parametrize(
    ("reading", "reference", "limit", "expected"),
    [
        (StageReading(10, 10.0, 0.0, 100.0), 90.0, None, []),
        (StageReading(10, 10.0, 0.011, 100.0), 90.0, None, ["errors 1.1% > 1%"]),
        (StageReading(10, 10.0, 0.01, 100.0), 90.0, None, []),  # at the limit: held
        (StageReading(10, 9.49, 0.0, 100.0), 90.0, None, ["sent 9.49/s of 10/s"]),
        (StageReading(10, 9.5, 0.0, 100.0), 90.0, None, []),
        (
            StageReading(10, 10.0, 0.0, 180.0),
            90.0,
            None,
            ["TTFT p99 180 ms, 2.0x the lowest stage's"],
        ),
        (StageReading(10, 10.0, 0.0, 179.0), 90.0, None, []),
        (StageReading(10, 10.0, 0.0, 100.0), None, 99.0, ["TTFT p99 100 ms > limit 99 ms"]),
        (
            StageReading(10, 10.0, 1.0, None),
            90.0,
            None,
            ["errors 100.0% > 1%", "no successful request"],
        ),
        (StageReading(10, None, None, None), None, None, ["no successful request"]),
    ],
)
def test_saturation_signs_one_phrase_per_sign(
    reading: StageReading, reference: float | None, limit: float | None, expected: list[str]
) -> None:
    assert saturation_signs(reading, reference, limit) == expected
