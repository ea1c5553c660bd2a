"""A benchmark's result table on stdout: columns padded to their widest cell."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["print_table"]


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` (the first is the header) as `a | b | c` lines, each column padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
