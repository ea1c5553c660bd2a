"""The README's module layout of `steps/` names every module in the tree, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEPS = REPO / "steps"


def _layout_paragraph() -> str:
    """The README paragraph that starts "In `steps/`," (up to the next blank line)."""
    readme = (REPO / "README.md").read_text()
    start = readme.index("In `steps/`,")
    return readme[start : readme.index("\n\n", start)]


def _modules_in_tree() -> set[str]:
    """Ground-floor files as `name.py`, step modules as `package/name` (no __init__/__main__)."""
    ground = {p.name for p in STEPS.glob("*.py") if p.name != "__init__.py"}
    packaged = {
        f"{p.parent.name}/{p.stem}"
        for p in STEPS.glob("*/*.py")
        if p.stem not in ("__init__", "__main__")
    }
    return ground | packaged


def _modules_in_readme() -> set[str]:
    """What the paragraph names: `x.py` files, and each package's backticked module list."""
    text = " ".join(_layout_paragraph().split())
    ground = set(re.findall(r"`([a-z_0-9]+\.py)`", text)) - {"__main__.py"}
    packaged = set()
    for package, listed in re.findall(r"`([a-z_]+)/` \(([^)]*)\)", text):
        names = re.findall(r"`([a-z_0-9]+)`", listed.split(";")[0])
        packaged |= {f"{package}/{name}" for name in names}
    return ground | packaged


def test_readme_steps_layout_matches_the_tree() -> None:
    in_tree, in_readme = _modules_in_tree(), _modules_in_readme()
    assert sorted(in_tree - in_readme) == [], "modules the README's layout does not name"
    assert sorted(in_readme - in_tree) == [], "names in the README's layout with no module"
