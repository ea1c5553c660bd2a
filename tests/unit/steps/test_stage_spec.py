"""The stage spec `RATExSECONDS,...`: what the load step's `--stages`, the workflow's `stages`
knob and a sweep's probe output mean by it, and the one-line refusals."""

from __future__ import annotations

import pytest

from steps.shared import MAX_SECONDS, MAX_STAGES
from steps.stage_spec import format_stages, parse_stages


def test_parse_stages_in_order_with_decimal_rates() -> None:
    assert parse_stages("5x180,10x180, 2.5x60") == ((5.0, 180), (10.0, 180), (2.5, 60))


@pytest.mark.parametrize(
    "stages",
    [((5.0, 180), (10.0, 180)), ((0.000001, 1),), ((1234.5678, int(MAX_SECONDS)),), ((1 / 3, 7),)],
)
def test_format_then_parse_gives_the_same_stages(stages: tuple[tuple[float, int], ...]) -> None:
    spec = format_stages(stages)
    assert "e" not in spec  # no exponent: the parser (and a reader) takes plain decimals
    assert parse_stages(spec) == stages


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "empty; expected RATExSECONDS"),
        ("5x180,", "stage 2 '' is not RATExSECONDS"),
        ("5*180", "stage 1 '5*180' is not RATExSECONDS"),
        ("5x1.5", "stage 1 '5x1.5' is not RATExSECONDS"),  # whole seconds only
        ("1e3x10", "stage 1 '1e3x10' is not RATExSECONDS"),
        ("-5x10", "stage 1 '-5x10' is not"),
        ("0x10", "stage 1 '0x10': the rate must be above 0"),
        ("5x0", "stage 1 '5x0': seconds must be 1-604800"),
        (f"5x{int(MAX_SECONDS) + 1}", "seconds must be 1-604800"),
        (",".join(["1x1"] * (MAX_STAGES + 1)), f"{MAX_STAGES + 1} stages, more than the 1000"),
        ("1x1," * 20000, "characters is more than 1000 stages can need"),
    ],
)
def test_parse_stages_refuses_with_one_line_naming_the_stage(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_stages(spec)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
