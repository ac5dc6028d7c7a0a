"""The packages depend on each other one way: server → schema → resolvers → db,
server → daemon → db (and gateway, events where they exist).

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


def test_the_check_sees_every_package_that_exists() -> None:
    present = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert present - {"tests", "bench"} <= PACKAGES


def test_the_check_would_catch_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from schema.build import build_schema\nimport db.models\n")
    assert {name for name, _ in imported_packages(module)} == {"schema", "db"}
