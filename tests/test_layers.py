"""The packages depend on each other one way: server → schema → resolvers → db,
server → daemon → db (and gateway, events where they exist). db imports no
other package; events imports only the shared vocabulary of db.

A module-level import that runs back up the layers fails here, so a shortcut
taken in a hurry is seen in review instead of in an import cycle later.
Imports under ``if TYPE_CHECKING:`` count too: they still tie the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Which first-party packages each package may import (itself always).
ALLOWED: dict[str, frozenset[str]] = {
    "db": frozenset(),
    "events": frozenset({"db"}),
    "resolvers": frozenset({"db", "events"}),
    "schema": frozenset({"resolvers", "db", "events"}),
    "daemon": frozenset({"db", "events"}),
    "gateway": frozenset({"db", "events"}),
    "server": frozenset({"schema", "resolvers", "db", "events", "daemon", "gateway"}),
}
PACKAGES = frozenset(ALLOWED)
# Where a package may use only some modules of another: the bus shares words
# with persistence (enums, limits), never its models or queries.
ONLY_MODULES: dict[tuple[str, str], frozenset[str]] = {
    ("events", "db"): frozenset({"db.vocabulary"}),
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """First-party packages a module imports, with the line of each import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top in PACKAGES:
                found.add((top, node.lineno))
    return found


def imported_modules(path: Path) -> set[tuple[str, int]]:
    """First-party modules a module imports by name (``from db import x`` as ``db.x``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module in PACKAGES:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update((name, node.lineno) for name in names if name.split(".")[0] in PACKAGES)
    return found


def modules_of(package: str) -> list[Path]:
    base = ROOT / package
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_runs_back_up_the_layers(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in modules_of(package)
        for target, line in sorted(imported_packages(path))
        if target != package and target not in ALLOWED[package]
    ]
    assert wrong == []


@pytest.mark.parametrize(("package", "target"), sorted(ONLY_MODULES))
def test_only_the_shared_modules_cross(package: str, target: str) -> None:
    allowed = ONLY_MODULES[(package, target)]
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules_of(package)
        for name, line in sorted(imported_modules(path))
        if name.split(".")[0] == target and name not in allowed
    ]
    assert wrong == []


def test_the_check_sees_every_package_that_exists() -> None:
    present = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert present - {"tests", "bench"} <= PACKAGES


def test_the_check_would_catch_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from schema.build import build_schema\nimport db.models\n")
    assert {name for name, _ in imported_packages(module)} == {"schema", "db"}


def test_the_check_would_catch_a_model_on_the_bus(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from db import models\nfrom db.vocabulary import ChatStatus\n")
    assert {name for name, _ in imported_modules(module)} == {"db.models", "db.vocabulary"}
