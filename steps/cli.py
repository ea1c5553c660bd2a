"""The one place where a step's exceptions become an exit code and a log setup.

Every step's `main(argv)` delegates here so that all of them print errors the same way
(one line, `<step>: <message>`, on stderr) and configure logging once, in `main`, never at
import time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from steps.errors import BenchError, UsageError
from steps.names import echo_input

__all__ = [
    "add_log_level_flag",
    "add_optional_flags",
    "config_from_flags",
    "configure_logging",
    "make_parser",
    "optional_text",
    "read_input_text",
    "run_main",
    "run_step",
    "secret_from_env",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


def add_log_level_flag(parser: argparse.ArgumentParser) -> None:
    """Add the shared `--log-level` flag."""
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (default: INFO)",
    )


#: Libraries that log whole requests at DEBUG: botocore its signed S3 requests (Authorization
#: with the access key id, X-Amz-Security-Token), urllib3/httpx/httpcore and the Kubernetes client
#: their headers. `--log-level DEBUG` is for this project's code; they stay at INFO or above.
_HEADER_LOGGING_LIBRARIES = (
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "httpx",
    "httpcore",
    "kubernetes",
)


def configure_logging(step: str, level: str = "INFO") -> None:
    """Log to stderr with a timestamp and the step name, as Argo shows pod logs."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s {step} %(levelname)s %(message)s",
        force=True,
    )
    library_level = max(logging.getLevelNamesMapping()[level], logging.INFO)
    for name in _HEADER_LOGGING_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)


class _LiteralHelpFormatter(argparse.HelpFormatter):
    """Help texts printed as written: they come from field descriptions ("errors > 1 %"), which
    argparse would otherwise %-format, so `--help` crashed on a percent sign."""

    def _expand_help(self, action: argparse.Action) -> str:
        return self._get_help_string(action) or ""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so `main` stays testable in-process,
    and prints help texts literally; sub-parsers (`add_subparsers` makes them of this class)
    inherit both."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _LiteralHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser whose usage errors become `UsageError` (exit 2, one line) and whose help
    texts are printed literally."""
    return _Parser(prog=prog, description=description)


def optional_text(text: str) -> str | None:
    """argparse `type=` for optional flags: Argo passes every parameter, "" means unset."""
    return text.strip() or None


def add_optional_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], *names: str
) -> None:
    """`--<name>` for each named field of `model`, its description as help; "" or absent = the
    field's default (Argo passes every parameter, `optional_text`)."""
    fields = model.model_fields
    for name in names:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=optional_text,
            default=None,
            help=fields[name].description,
        )


def secret_from_env(environ: Mapping[str, str], name: str | None, flag: str) -> SecretStr | None:
    """The secret in the environment variable `name` (None when no name is configured).

    A configured name whose variable is unset or empty is a usage error naming `flag`: running
    on without the key would only fail later as HTTP 401s. The value never appears in a message.
    """
    if not name:
        return None
    value = environ.get(name, "")
    if not value:
        raise UsageError(f"{flag} {name}: that environment variable is not set")
    return SecretStr(value)


def read_input_text(path: Path, what: str) -> str:
    """The text of a user-given input file (config, SLA, values), or one UsageError line.

    Binary files are refused here, not deep inside a YAML parser: `read_text` raises
    UnicodeDecodeError (a ValueError, not an OSError) for them, which would be a traceback.
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what} {path}: not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); expected YAML"
        ) from None


def config_from_flags(model: type[ModelT], args: argparse.Namespace) -> ModelT:
    """A step's typed config from parsed flags; flags left unset (None) take the model default.

    A bad value becomes one UsageError line naming the flag, e.g.
    `--timeout: Input should be greater than 0 (got '-1')`.
    """
    given = {k: v for k, v in vars(args).items() if v is not None and k != "log_level"}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "flags"
        msg = err["msg"].removeprefix("Value error, ")
        raise UsageError(f"{flag}: {msg}{echo_input(err)}") from None


def run_step(
    step: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    model: type[ModelT],
    body: Callable[[ModelT], int],
) -> int:
    """A step's `main` for flags that map one to one onto `model`: parse `argv`, configure
    logging, build the typed config and return `body(config)`, all under `run_main`."""

    def parsed() -> int:
        args = parser.parse_args(argv)
        configure_logging(step, args.log_level)
        return body(config_from_flags(model, args))

    return run_main(step, parsed)


def run_main(step: str, body: Callable[[], int]) -> int:
    """Run a step body; map our errors to one stderr line and their exit code."""
    try:
        return body()
    except BenchError as exc:
        print(f"{step}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{step}: interrupted", file=sys.stderr)
        return 130
