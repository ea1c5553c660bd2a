"""The project's import map, read from the code's own import statements (ast, nothing imported).

Why: issue-level rules about layering ("no step imports another step", "workflows/ sees only the
ground floor", "no import circles") are only true while something checks them on every change.
`tests/unit/test_layers.py` asserts them; `python -m tests.helpers.import_map` prints the map
per package, the form the closing notes and CONTRACTS.md quote.

Layers:
- ground floor: modules directly under `steps/` (`steps/names.py`, `steps/shared.py`, ...);
- a step: everything under one `steps/<step>/` package;
- `workflows`: everything under `workflows/`.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["cycles", "import_edges", "layer_of", "layer_violations", "package_map"]

ROOTS = ("steps", "workflows")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            found[_module_name(root, path)] = path
    return found


def _resolve(name: str, known: Mapping[str, Path]) -> str | None:
    """The longest known module that `name` (a dotted import target) is or lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.AST, package: str, known: Mapping[str, Path]) -> Iterable[str | None]:
    """The project modules one import statement names (None for anything else)."""
    if isinstance(node, ast.Import):
        yield from (_resolve(alias.name, known) for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolve against the importing module's package
            parts = package.split(".")
            base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
        for alias in node.names:
            # `from pkg import module` names the module; `from module import name` the module.
            submodule = f"{base}.{alias.name}"
            yield submodule if submodule in known else _resolve(base, known)


def import_edges(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file, functions included)."""
    known = _modules(root)
    edges: dict[str, set[str]] = {}
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets.update(t for t in _targets(node, package, known) if t is not None)
        edges[module] = targets - {module, *ROOTS}
    return edges


def _step_packages(edges: Mapping[str, set[str]]) -> set[str]:
    """Names of the step packages: `steps/<x>/` directories (they hold modules)."""
    return {m.split(".")[1] for m in edges if m.startswith("steps.") and m.count(".") >= 2}


def layer_of(module: str, step_packages: set[str]) -> str:
    """`ground`, `step:<name>` or `workflows`."""
    parts = module.split(".")
    if parts[0] == "workflows":
        return "workflows"
    if len(parts) >= 2 and parts[1] in step_packages:
        return f"step:{parts[1]}"
    return "ground"


def layer_violations(edges: Mapping[str, set[str]]) -> list[str]:
    """Every import that crosses the layering rule, as `importer -> imported (why)`."""
    steps = _step_packages(edges)
    bad: list[str] = []
    for src, targets in sorted(edges.items()):
        src_layer = layer_of(src, steps)
        for dst in sorted(targets):
            dst_layer = layer_of(dst, steps)
            if dst_layer not in ("ground", src_layer):
                bad.append(f"{src} -> {dst} ({src_layer} may not import {dst_layer})")
    return bad


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_map(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The map per unit: a step package (`steps.load`), `workflows`, or a ground-floor module."""
    steps = _step_packages(edges)

    def unit(module: str) -> str:
        layer = layer_of(module, steps)
        if layer == "ground":
            return module
        return "workflows" if layer == "workflows" else f"steps.{layer.removeprefix('step:')}"

    out: dict[str, set[str]] = defaultdict(set)
    for src, targets in edges.items():
        out[unit(src)].update(unit(dst) for dst in targets if unit(dst) != unit(src))
    return dict(out)


def main(argv: list[str]) -> int:
    """Print the package map, then any layering violation and cycle."""
    root = Path(argv[0]) if argv else Path.cwd()
    edges = import_edges(root)
    for unit, targets in sorted(package_map(edges).items()):
        print(f"{unit:24} -> {', '.join(sorted(targets)) or '-'}")
    for line in layer_violations(edges):
        print(f"VIOLATION {line}")
    for group in cycles(edges):
        print(f"CYCLE {' <-> '.join(group)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
