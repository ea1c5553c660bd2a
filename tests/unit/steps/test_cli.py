from __future__ import annotations

import argparse

import pytest
from pydantic import Field

from steps.cli import config_from_flags, make_parser, optional_text, run_main
from steps.errors import BenchError, BreachError, UsageError
from steps.shared import StrictModel


class _Flags(StrictModel):
    timeout: float = Field(default=600, gt=0)
    model_name: str = "m"


def test_optional_text_empty_is_unset() -> None:
    assert optional_text("") is None
    assert optional_text("  ") is None
    assert optional_text(" x ") == "x"


def test_config_from_flags_unset_flags_take_defaults() -> None:
    cfg = config_from_flags(
        _Flags, argparse.Namespace(timeout=None, model_name="q", log_level="INFO")
    )
    assert cfg.timeout == 600 and cfg.model_name == "q"


def test_config_from_flags_bad_value_names_the_flag() -> None:
    with pytest.raises(UsageError) as err:
        config_from_flags(_Flags, argparse.Namespace(timeout="-1", model_name=None))
    assert str(err.value) == "--timeout: Input should be greater than 0 (got '-1')"


def test_make_parser_usage_error_is_exit_2_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = make_parser("prog", None)
    parser.add_argument("--rate", type=float, required=True)
    assert run_main("step", lambda: parser.parse_args(["--rate", "x"]) and 0) == 2
    err = capsys.readouterr().err
    assert err.startswith("step: argument --rate: invalid float value: 'x'")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("exc", "code"), [(BenchError("x"), 1), (BreachError("x"), 3)])
def test_run_main_maps_errors_to_exit_codes(exc: BenchError, code: int) -> None:
    def body() -> int:
        raise exc

    assert run_main("step", body) == code


def test_run_main_keeps_traceback_of_bugs() -> None:
    def body() -> int:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_main("step", body)
