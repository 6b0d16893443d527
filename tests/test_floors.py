"""The house rules that the package layout shows, checked: floors import only downwards, and no circle.

- ground floor (``workbench/*.py`` but ``cli.py``, and ``workbench/config/``): neither torch nor Qt, so the
  window can import it at start-up and ``workbench runs`` answers at once;
- ``workbench/engine/``: never Qt;
- no import circle between the package's modules, counting imports inside functions too (not those for
  type hints only).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
GROUND_FLOOR = sorted(
    [f"workbench.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "cli")]
    + [f"workbench.config.{p.stem}" for p in (PACKAGE / "config").glob("*.py") if p.stem != "__init__"]
)
HEAVY = ("torch", "PySide6", "pyqtgraph", "transformers")


def _loaded_after_import(modules: list[str]) -> list[str]:
    code = (
        f"import sys\nfor m in {modules!r}:\n    __import__(m)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return ast.literal_eval(out.strip())


def test_the_ground_floor_loads_neither_torch_nor_qt():
    assert "workbench.run_folder" in GROUND_FLOOR and "workbench.config.schema" in GROUND_FLOOR
    assert _loaded_after_import(GROUND_FLOOR) == []


def test_the_chart_numbers_and_the_soft_target_state_load_no_qt():
    # the pure models under the window's views (napari's split): testable without a display
    models = ["workbench.gui.charts.series", "workbench.gui.soft_targets.state", "workbench.gui.runs.sweep_cells"]
    assert _loaded_after_import(models) == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules a file imports (``from a.b import c`` counts a.b.c when that is a module)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for block in ast.walk(tree):  # names imported for type hints only are no runtime edge
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING":
            block.body = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name in known:
                found.add(name)
    return found


def test_no_module_of_the_package_imports_itself_back_through_a_circle():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports_of(path, set(files)) - {name} for name, path in files.items()}
    # a package's __init__ is not an edge: importing a.b.c runs a/__init__ and a/b/__init__, which import nothing
    for name in graph:
        graph[name] = {m for m in graph[name] if not files[m].name == "__init__.py"}
    visiting, done, circles = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            circles.append(trail[trail.index(node) :] + [node])
            return
        visiting.add(node)
        for child in sorted(graph[node]):
            visit(child, trail + [node])
        visiting.discard(node)
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert circles == []


def test_engine_imports_no_qt():
    engine = sorted(_module_name(p) for p in (PACKAGE / "engine").rglob("*.py"))
    assert len(engine) >= 25
    loaded = _loaded_after_import(engine)
    assert "PySide6" not in loaded and "pyqtgraph" not in loaded


def test_every_source_folder_is_a_package_that_an_install_ships():
    # setuptools' find_packages skips a folder without __init__.py: a non-editable install would lack it
    root = PACKAGE
    folders = {p.parent for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f.relative_to(root)) for f in folders if not (f / "__init__.py").is_file()) == []


def test_no_source_file_is_ignored_by_git():
    # a .gitignore rule that matches a source folder (runs/ matched gui/runs/) leaves new files out of every clone
    root = PACKAGE.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(p.relative_to(root)) for p in (root / "workbench").rglob("*.py") if "__pycache__" not in p.parts]
    done = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=root, capture_output=True, text=True)
    assert done.stdout.split() == []
