"""Golden manifests: compared on every run, rewritten only on request (REGENERATE_GOLDEN=1).

Why explicit: a golden file regenerated as a side effect of a test run proves nothing, so, as in
Hera's own example tests, regeneration is an act the developer asks for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["GOLDEN_DIR", "check_golden_json", "check_golden_yaml"]

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "workflows"
_REGENERATE = os.environ.get("REGENERATE_GOLDEN") == "1"


def check_golden_yaml(name: str, value: Any) -> None:
    """Assert `value` equals `GOLDEN_DIR/<name>.yaml` (rewritten first with REGENERATE_GOLDEN=1)."""
    path = GOLDEN_DIR / f"{name}.yaml"
    if _REGENERATE:
        path.write_text(yaml.safe_dump(value, sort_keys=False))
    assert yaml.safe_load(path.read_text()) == value, (
        f"{path} differs; if intended, regenerate with REGENERATE_GOLDEN=1"
    )


def check_golden_json(name: str, value: Any) -> None:
    """Assert `value` equals `GOLDEN_DIR/<name>.json` (rewritten first with REGENERATE_GOLDEN=1)."""
    path = GOLDEN_DIR / f"{name}.json"
    if _REGENERATE:
        path.write_text(json.dumps(value, indent=2) + "\n")
    assert json.loads(path.read_text()) == value, (
        f"{path} differs; if intended, regenerate with REGENERATE_GOLDEN=1"
    )
