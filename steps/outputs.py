"""Argo output parameters as files: one small text file per parameter, no trailing newline.

Shared by every step that sets Argo output parameters (readiness, report). Argo reads an output
parameter from `valueFrom.path`; a trailing newline would become part of the
value (and of every downstream `when:` comparison), hence none.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from steps.errors import BenchError

__all__ = ["format_number", "write_outputs"]


def format_number(value: float | None, digits: int = 3) -> str:
    """A parameter value: fixed-point with `digits` decimals, "" when unknown (Argo's "unset")."""
    return "" if value is None else f"{value:.{digits}f}"


def write_outputs(outputs_dir: Path, values: Mapping[str, str]) -> None:
    """Write each value to `outputs_dir/<name>`; I/O errors become a one-line BenchError."""
    try:
        outputs_dir.mkdir(parents=True, exist_ok=True)
        for name, value in values.items():
            (outputs_dir / name).write_text(value)
    except OSError as exc:
        raise BenchError(f"--outputs-dir: cannot write {outputs_dir} ({exc.strerror})") from None
