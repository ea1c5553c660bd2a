"""Every object `python -m workflows.baseline render` emits, by kind, read back from its YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workflows.baseline import main

__all__ = ["RENDER_KINDS", "rendered_objects"]

#: The render kinds whose union is everything the CLI can emit.
RENDER_KINDS = ("all", "workflow", "simulator")


def rendered_objects(out_dir: Path, *extra: str) -> list[dict[str, Any]]:
    """The objects of every render kind (default knobs and options, plus `extra` flags)."""
    objects: list[dict[str, Any]] = []
    for kind in RENDER_KINDS:
        target = out_dir / kind
        assert main(["render", "--kind", kind, "-o", str(target), *extra], {}) == 0
        for path in sorted(target.glob("*.yaml")):
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects
