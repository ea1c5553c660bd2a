"""What `python -m workflows.baseline` writes for a person: stderr lines, files, the verdict.

Progress and notes go to stderr (`echo`), results to stdout, so `render` can be piped to
`kubectl apply -f -`. An output directory that cannot be used is refused in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from steps.errors import UsageError
from steps.summary_model import CAPACITY_OUTPUT_NAMES, OUTPUT_METRIC_NAMES

__all__ = ["echo", "make_output_dir", "print_verdict", "write_output"]


def echo(line: str) -> None:
    """One progress line on stderr, flushed (a long run shows it as it happens)."""
    print(line, file=sys.stderr, flush=True)


def make_output_dir(path: Path, flag: str) -> None:
    """Create an output directory, or refuse in one line: a file in the way, no permission."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # FileExistsError for a file, NotADirectoryError, PermissionError
        raise UsageError(f"{flag} {path}: cannot use it as a directory ({exc.strerror})") from None


def write_output(path: Path, text: str, flag: str) -> None:
    """Write one rendered file into the `flag` directory, or refuse in one line."""
    make_output_dir(path.parent, flag)
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(
            f"{flag} {path.parent}: cannot write {path.name} ({exc.strerror})"
        ) from None


def print_verdict(phase: str, report: Mapping[str, str], message: str = "") -> None:
    """The run's phase, the report's verdict and key figures, and where the report is."""
    print(f"phase: {phase}{f' ({message})' if message else ''}")
    if not report:
        print("verdict: none (the report step did not finish)")
        return
    print(f"verdict: {report.get('verdict', '')}")
    for key in OUTPUT_METRIC_NAMES:  # the headline figures, as the dashboards' gauges
        print(f"  {key}: {report.get(key, '')}")
    for key in CAPACITY_OUTPUT_NAMES:  # only a run of several rates has them
        if report.get(key):
            print(f"  {key}: {report[key]}")
    if report.get("report_uri"):
        print(f"report: {report['report_uri']}")
