"""The layering rules of steps/CONTRACTS.md, checked on the code's own imports.

Ground floor (`steps/*.py`) imports only itself; a step package imports only itself and the
ground floor; `workflows/` imports only itself and the ground floor; no module takes part in an
import circle (type-checking imports included: a circle there is still one design knot).
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.import_map import cycles, import_edges, layer_violations, package_map

REPO = Path(__file__).resolve().parents[2]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_project_no_import_crosses_a_layer() -> None:
    assert layer_violations(import_edges(REPO)) == []


def test_project_has_no_import_circle() -> None:
    assert cycles(import_edges(REPO)) == []


def test_checker_finds_step_to_step_workflows_to_step_and_ground_to_step(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "steps/__init__.py": "",
            "steps/names.py": "from steps.load.run import x\n",
            "steps/load/__init__.py": "",
            "steps/load/run.py": "from steps.names import y\nfrom steps.report import render\n",
            "steps/report/__init__.py": "",
            "steps/report/render.py": "def f():\n    import steps.load.run\n",
            "workflows/__init__.py": "",
            "workflows/template.py": "from steps.names import y\nfrom steps.load.run import x\n",
        },
    )

    assert layer_violations(import_edges(tmp_path)) == [
        "steps.load.run -> steps.report.render (step:load may not import step:report)",
        "steps.names -> steps.load.run (ground may not import step:load)",
        "steps.report.render -> steps.load.run (step:report may not import step:load)",
        "workflows.template -> steps.load.run (workflows may not import step:load)",
    ]


def test_checker_finds_a_circle_through_type_checking_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "steps/__init__.py": "",
            "steps/sim/__init__.py": "",
            "steps/sim/a.py": "from steps.sim.b import B\n",
            "steps/sim/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from steps.sim.a import A\n",
            "steps/sim/c.py": "from steps.sim import a\n",
        },
    )

    assert cycles(import_edges(tmp_path)) == [["steps.sim.a", "steps.sim.b"]]


def test_package_map_groups_step_modules_and_keeps_ground_modules(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "steps/__init__.py": "",
            "steps/errors.py": "",
            "steps/load/__init__.py": "",
            "steps/load/run.py": "from steps.errors import E\nfrom steps.load import worker\n",
            "steps/load/worker.py": "import steps.errors\n",
            "workflows/__init__.py": "",
            "workflows/cli.py": "from steps import errors\n",
        },
    )

    assert package_map(import_edges(tmp_path)) == {
        "steps": set(),
        "steps.errors": set(),
        "steps.load": {"steps.errors"},
        "workflows": {"steps.errors"},
    }
