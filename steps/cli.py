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

from steps.errors import BenchError, UsageError

__all__ = ["add_log_level_flag", "configure_logging", "make_parser", "run_main"]


def add_log_level_flag(parser: argparse.ArgumentParser) -> None:
    """Add the shared `--log-level` flag."""
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (default: INFO)",
    )


def configure_logging(step: str, level: str = "INFO") -> None:
    """Log to stderr with a timestamp and the step name, as Argo shows pod logs."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s {step} %(levelname)s %(message)s",
        force=True,
    )


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so `main` stays testable in-process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def make_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser whose usage errors become `UsageError` (exit 2, one line)."""
    return _Parser(prog=prog, description=description)


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
