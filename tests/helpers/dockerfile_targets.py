"""images/Dockerfile's build targets, parsed for the tests that check images against manifests."""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["REPO", "dockerfile_targets"]

REPO = Path(__file__).resolve().parents[2]


def dockerfile_targets() -> dict[str, dict[str, object]]:
    """Build target -> {from, extras, entrypoint, user, workdir} from the Dockerfile."""
    targets: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    for line in (REPO / "images" / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line):
            current = {"from": match.group(1), "extras": [], "user": None}
            targets[match.group(2)] = current
        elif match := re.search(r'pip install .*"\.\[([a-z,]+)\]"', line):
            current["extras"] = match.group(1).split(",")
        elif line.startswith("ENTRYPOINT"):
            current["entrypoint"] = json.loads(line.removeprefix("ENTRYPOINT"))
        elif line.startswith("USER"):
            current["user"] = line.split()[1]
        elif line.startswith("WORKDIR"):
            current["workdir"] = line.split()[1]
    return targets
