"""SLA thresholds: file parsing, flag parsing, precedence, verdicts (pure functions)."""

from __future__ import annotations

import pytest

from steps.errors import UsageError
from steps.report.sla import (
    evaluate_sla,
    merge_thresholds,
    parse_flag_value,
    parse_sla_yaml,
)
from steps.summary_model import Group
from tests.helpers.summaries import group, stats


def _overall(ttft_p99: float | None = 120.0, error_rate: float = 0.0) -> Group:
    return group(
        error_rate=error_rate,
        ttft=stats(50.0, ttft_p99),
        itl=stats(9.0, 14.0),
        schedule_delay=stats(None, 2.0),
    )


def test_parse_sla_yaml_known_keys_returns_limits() -> None:
    text = "ttft_p99_ms: 500\nitl_p50_ms: 12.5\nschedule_delay_p99_ms: null\n"
    assert parse_sla_yaml(text, "sla.yml") == {
        "ttft_p99_ms": 500.0,
        "itl_p50_ms": 12.5,
        "schedule_delay_p99_ms": None,
    }


def test_parse_sla_yaml_unknown_key_names_it() -> None:
    with pytest.raises(UsageError, match=r"sla.yml: unknown SLA key 'ttft_p95_ms'"):
        parse_sla_yaml("ttft_p95_ms: 3\n", "sla.yml")


@pytest.mark.parametrize(
    "text", ["ttft_p99_ms: fast\n", "ttft_p99_ms: -1\n", "ttft_p99_ms: true\n"]
)
def test_parse_sla_yaml_bad_value_names_key(text: str) -> None:
    with pytest.raises(UsageError, match="ttft_p99_ms"):
        parse_sla_yaml(text, "sla.yml")


def test_parse_sla_yaml_not_a_mapping_is_usage_error() -> None:
    with pytest.raises(UsageError, match="expected a mapping"):
        parse_sla_yaml("- 1\n- 2\n", "sla.yml")


def test_parse_flag_value_off_word_disables() -> None:
    assert parse_flag_value("schedule_delay_p99_ms", "off") is None
    assert parse_flag_value("ttft_p99_ms", "250") == 250.0


def test_parse_flag_value_garbage_names_flag() -> None:
    with pytest.raises(UsageError, match="--sla-ttft-p99-ms: expected a number"):
        parse_flag_value("ttft_p99_ms", "abc")


def test_merge_thresholds_flags_override_file_and_default() -> None:
    merged = merge_thresholds(
        {"ttft_p99_ms": 500.0, "schedule_delay_p99_ms": 20.0}, {"ttft_p99_ms": 300.0}
    )
    assert merged["ttft_p99_ms"] == 300.0
    assert merged["schedule_delay_p99_ms"] == 20.0
    assert merged["itl_p99_ms"] is None


def test_merge_thresholds_nothing_given_keeps_error_rate_and_schedule_delay_defaults() -> None:
    merged = merge_thresholds({}, {})
    assert merged["schedule_delay_p99_ms"] == 10.0
    assert merged["error_rate"] == 0.01
    assert [k for k, v in merged.items() if v is not None] == [
        "error_rate",
        "schedule_delay_p99_ms",
    ]


def test_evaluate_sla_value_above_limit_fails_and_equal_passes() -> None:
    verdicts = evaluate_sla({"ttft_p99_ms": 100.0, "itl_p99_ms": 14.0}, _overall(ttft_p99=120.0))
    by_name = {v.name: v for v in verdicts}
    assert (by_name["ttft_p99_ms"].value, by_name["ttft_p99_ms"].passed) == (120.0, False)
    assert by_name["itl_p99_ms"].passed


def test_evaluate_sla_missing_value_fails() -> None:
    (verdict,) = evaluate_sla({"ttft_p99_ms": 100.0}, _overall(ttft_p99=None))
    assert verdict.value is None
    assert not verdict.passed


def test_evaluate_sla_unset_threshold_is_not_judged() -> None:
    verdicts = evaluate_sla({"ttft_p99_ms": None, "error_rate": 0.01}, _overall(error_rate=0.02))
    assert [(v.name, v.passed) for v in verdicts] == [("error_rate", False)]


def test_evaluate_sla_goodput_is_a_lower_bound() -> None:
    thresholds = {"goodput_rps": 2.0}
    low = evaluate_sla(thresholds, group(goodput=1.5))
    assert [(v.name, v.passed, v.bound) for v in low] == [("goodput_rps", False, ">=")]
    assert evaluate_sla(thresholds, group(goodput=2.0))[0].passed
    assert not evaluate_sla(thresholds, group(goodput=None))[0].passed  # no SLO set: no data
