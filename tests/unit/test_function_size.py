"""No function in steps/ or workflows/ is longer than a screen, outside the measured hot paths.

Why a test: "orchestrators cut to size" stays true only while something notices a function
growing back into a hub. A hot path may be longer when splitting it would cost a call per
network read or per record; such a function is listed here by name with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 60

#: path::function -> why it may be longer (a measured hot path: one call per read or record).
HOT_PATHS: dict[str, str] = {}


def _long_functions(root: Path) -> list[str]:
    found = []
    for top in ("steps", "workflows"):
        for path in sorted((root / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    key = f"{path.relative_to(root)}::{node.name}"
                    if length > MAX_LINES and key not in HOT_PATHS:
                        found.append(f"{key} ({length} lines)")
    return found


def test_no_function_longer_than_a_screen_outside_hot_paths() -> None:
    assert _long_functions(REPO) == []


def test_checker_counts_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "big.py").write_text(f"def big():\n{body}\n\ndef small():\n    pass\n")

    assert _long_functions(tmp_path) == [f"steps/big.py::big ({MAX_LINES + 1} lines)"]
