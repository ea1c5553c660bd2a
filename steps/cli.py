"""The one place where a step's exceptions become an exit code and a log setup.

Every step's `main(argv)` delegates here so that all of them print errors the same way
(one line, `<step>: <message>`, on stderr) and configure logging once, in `main`, never at
import time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from steps.errors import BenchError, UsageError
from steps.names import echo_input

__all__ = [
    "add_log_level_flag",
    "config_from_flags",
    "configure_logging",
    "make_parser",
    "optional_text",
    "read_input_text",
    "run_main",
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


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so `main` stays testable in-process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser whose usage errors become `UsageError` (exit 2, one line)."""
    return _Parser(prog=prog, description=description)


def optional_text(text: str) -> str | None:
    """argparse `type=` for optional flags: Argo passes every parameter, "" means unset."""
    return text.strip() or None


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
