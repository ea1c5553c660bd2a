from __future__ import annotations

import argparse

import pytest
from pydantic import Field

from steps.cli import (
    add_log_level_flag,
    add_optional_flags,
    config_from_flags,
    make_parser,
    optional_text,
    run_main,
    run_step,
    secret_from_env,
)
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


def _flags_parser() -> argparse.ArgumentParser:
    parser = make_parser("prog", None)
    add_optional_flags(parser, _Flags, "timeout", "model_name")
    add_log_level_flag(parser)
    return parser


def test_add_optional_flags_empty_or_absent_takes_the_model_default() -> None:
    seen: list[_Flags] = []

    def body(config: _Flags) -> int:
        seen.append(config)
        return 0

    argv = ["--timeout", "", "--model-name", "q"]
    assert run_step("step", _flags_parser(), argv, _Flags, body) == 0
    assert run_step("step", _flags_parser(), [], _Flags, body) == 0
    assert seen == [_Flags(model_name="q"), _Flags()]


def test_run_step_bad_flag_is_exit_2_one_line_before_the_body(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body(config: _Flags) -> int:
        raise AssertionError("the body ran with a bad flag")

    assert run_step("step", _flags_parser(), ["--timeout", "-1"], _Flags, body) == 2
    assert capsys.readouterr().err == (
        "step: --timeout: Input should be greater than 0 (got '-1')\n"
    )


def test_run_step_returns_the_body_exit_code() -> None:
    assert run_step("step", _flags_parser(), [], _Flags, lambda config: 7) == 7


def test_secret_from_env_no_name_is_no_secret() -> None:
    assert secret_from_env({"KEY": "v"}, None, "--api-key-env") is None


def test_secret_from_env_named_variable_unset_or_empty_is_usage_error() -> None:
    for environ in ({}, {"KEY": ""}):
        with pytest.raises(UsageError) as err:
            secret_from_env(environ, "KEY", "--api-key-env")
        assert str(err.value) == "--api-key-env KEY: that environment variable is not set"


def test_secret_from_env_value_is_a_secret_never_printed() -> None:
    secret = secret_from_env({"KEY": "sk-123"}, "KEY", "--api-key-env")
    assert secret is not None and secret.get_secret_value() == "sk-123"
    assert "sk-123" not in repr(secret) + str(secret)


def test_make_parser_help_is_printed_literally_in_sub_parsers_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = make_parser("prog", None)
    sub = parser.add_subparsers(dest="command").add_parser("go")
    sub.add_argument("--limit", help="refused above 95 % (not %(default)s)")
    with pytest.raises(SystemExit):
        parser.parse_args(["go", "--help"])
    assert "refused above 95 % (not %(default)s)" in capsys.readouterr().out
    with pytest.raises(UsageError):
        parser.parse_args(["go", "--no-such-flag"])
