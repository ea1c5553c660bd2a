"""One exception tree for every step, with the exit code on the class.

    BenchError            exit 1: the step ran but failed (endpoint not ready, upload failed)
    ├── UsageError        exit 2: bad flags, config or input files; nothing was attempted
    └── BreachError       exit 3: SLA or regression breach, raised only with --fail-on-breach

`steps.cli.run_main` prints any of these as one stderr line and returns the code; anything else
is a bug and keeps its traceback. Third-party errors (httpx, botocore, pyarrow) are translated
into these at the boundary where they happen, so the message can name the value and the fix.
"""

from __future__ import annotations

__all__ = ["BenchError", "BreachError", "UsageError"]


class BenchError(Exception):
    """A step failed for a reason the user can act on; the message is one line."""

    exit_code = 1


class UsageError(BenchError):
    """Bad flags, config keys or input files: fix the input and run again."""

    exit_code = 2


class BreachError(BenchError):
    """An SLA threshold or the regression tolerance was exceeded (only with --fail-on-breach)."""

    exit_code = 3
