"""Tortoise's, broadcaster's and aiodataloader's private surface is used in one
module each: ``db/tortoise_compat.py``, ``events/broadcaster_compat.py``,
``resolvers/dataloader_compat.py``. Their tests say when an upgrade changes that
surface; they can only do so if nothing else reaches past them.

Fails on any other module (tests and benchmarks included) that imports a private
module or name of those libraries, reads one of the private attributes the compat
modules wrap (directly or through ``getattr`` and friends), or, in a subclass of
a library class, touches a private attribute the library's class has.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from db import tortoise_compat
from events import broadcaster_compat
from resolvers import dataloader_compat

ROOT = Path(__file__).resolve().parent.parent
SELF_NAMES = frozenset({"self", "cls"})
BY_NAME = frozenset({"getattr", "setattr", "hasattr", "delattr"})


@dataclass(frozen=True)
class Library:
    package: str
    compat: str
    names: frozenset[str]


LIBRARIES = (
    # ``_meta`` too: Tortoise's model metadata is the usual shortcut.
    Library("tortoise", "db/tortoise_compat.py", tortoise_compat.PRIVATE_NAMES | {"_meta"}),
    Library("broadcaster", "events/broadcaster_compat.py", broadcaster_compat.PRIVATE_NAMES),
    Library("aiodataloader", "resolvers/dataloader_compat.py", dataloader_compat.PRIVATE_NAMES),
)


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def sources() -> list[Path]:
    """Every module of every package here, tests and benchmarks included."""
    packages = [p for p in ROOT.iterdir() if (p / "__init__.py").exists()]
    return sorted(path for package in packages for path in package.rglob("*.py"))


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name → dotted name imported (``DataLoader`` → ``aiodataloader.DataLoader``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                names[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """The dotted name a base class expression refers to (``DataLoader[K, V]`` too)."""
    if isinstance(node, ast.Subscript):
        return dotted(node.value, names)
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        owner = dotted(node.value, names)
        return None if owner is None else f"{owner}.{node.attr}"
    return None


def resolve(name: str) -> type | None:
    """The library class a dotted name refers to, or None."""
    module, _, attr = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if inspect.isclass(found) else None


def on_self(node: ast.AST) -> bool:
    """``self._x`` or ``cls._x``: an attribute of the object's own class."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in SELF_NAMES
    )


@cache
def private_names_of(cls: type, package: str) -> frozenset[str]:
    """Private attributes the library's classes in ``cls``'s MRO define or use."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != package:
            continue
        names.update(n for n in vars(klass) if is_private(n))
        names.update(n for n in inspect.get_annotations(klass) if is_private(n))
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        names.update(
            node.attr
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and on_self(node) and is_private(node.attr)
        )
    return frozenset(names)


def library_classes(package: str, trees: dict[Path, ast.Module]) -> dict[str, set[type]]:
    """Our class name → the library classes it derives from (through ours too)."""
    bases: dict[str, list[str]] = {}
    for tree in trees.values():
        names = imported_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                resolved = [dotted(base, names) for base in node.bases]
                bases.setdefault(node.name, []).extend(b for b in resolved if b is not None)
    derived: dict[str, set[type]] = {name: set() for name in bases}
    grew = True
    while grew:
        grew = False
        for name, targets in bases.items():
            for target in targets:
                found: set[type] = set()
                if target.split(".")[0] == package:
                    library_class = resolve(target)
                    if library_class is not None:
                        found.add(library_class)
                else:
                    found = derived.get(target.rsplit(".", 1)[-1], set())
                if not found <= derived[name]:
                    derived[name] |= found
                    grew = True
    return {name: classes for name, classes in derived.items() if classes}


def string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments (``getattr(x, NAME)`` reads them)."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def private_import(node: ast.AST, package: str) -> str | None:
    """The private module or name an import takes from ``package``, if any."""
    if isinstance(node, ast.Import):
        modules = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        # ``from lib._private import x`` names the module; ``from lib import _x`` the name.
        modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    else:
        return None
    for module in modules:
        parts = module.split(".")
        if parts[0] == package and any(is_private(part) for part in parts[1:]):
            return module
    return None


def named_attribute(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The attribute ``getattr(x, "_name")`` (or setattr, hasattr, delattr) names."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id not in BY_NAME or len(node.args) < 2:
        return None
    name = node.args[1]
    if isinstance(name, ast.Name):
        return constants.get(name.id)
    return name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None


def reads(node: ast.AST, library: Library, constants: dict[str, str]) -> bool:
    """Whether ``node`` reads a wrapped attribute of another object, or one by name."""
    if isinstance(node, ast.Attribute):
        return node.attr in library.names and not on_self(node)
    return named_attribute(node, constants) in library.names


def offences(tree: ast.Module, library: Library, derived: dict[str, set[type]]) -> Iterator[str]:
    """Each use of ``library``'s private surface in one module, as ``line: code``."""
    constants = string_constants(tree)
    for node in ast.walk(tree):
        module = private_import(node, library.package)
        if module is not None and isinstance(node, ast.Import | ast.ImportFrom):
            yield f"{node.lineno}: imports {module}"
        elif isinstance(node, ast.Attribute | ast.Call) and reads(node, library, constants):
            yield f"{node.lineno}: {ast.unparse(node)}"
        elif isinstance(node, ast.ClassDef) and node.name in derived:
            private = set[str]().union(
                *(private_names_of(cls, library.package) for cls in derived[node.name])
            )
            for inner in ast.walk(node):
                if isinstance(inner, ast.Attribute) and on_self(inner) and inner.attr in private:
                    yield f"{inner.lineno}: {ast.unparse(inner)} in {node.name}"


def line_of(offence: str) -> int:
    return int(offence.split(":", 1)[0])


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def offenders(library: Library, paths: list[Path]) -> list[str]:
    trees = {path: parsed(path) for path in paths}
    derived = library_classes(library.package, trees)
    return [
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{offence}"
        for path, tree in trees.items()
        for offence in sorted(set(offences(tree, library, derived)), key=line_of)
    ]


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.package)
def test_only_the_compat_module_uses_the_private_surface(library: Library) -> None:
    others = [path for path in sources() if path != ROOT / library.compat]
    found = offenders(library, others)
    assert found == [], (
        f"{library.package}'s private surface is used outside {library.compat}; "
        f"call (or extend) that module instead: {found}"
    )


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.package)
def test_the_check_sees_the_compat_modules_own_uses(library: Library) -> None:
    """Not blind: each compat module is an offender by the same rules."""
    assert offenders(library, [ROOT / library.compat]) != []


def test_the_check_would_catch_each_kind_of_shortcut(tmp_path: Path) -> None:
    module = tmp_path / "shortcuts.py"
    module.write_text(
        textwrap.dedent(
            """
            from broadcaster._base import Event
            import broadcaster._backends.memory
            from aiodataloader import DataLoader
            from tortoise import Tortoise

            class Loader(DataLoader[int, int]):
                def load(self, key):
                    return self._cache.get(key)

            class Deeper(Loader):
                def peek(self):
                    return self._queue

            pool = Tortoise.get_connection("default")._pool
            fields = getattr(object, "_meta")
            """
        )
    )
    by_library = {lib.package: offenders(lib, [module]) for lib in LIBRARIES}
    found = {o.split(":", 1)[1] for found in by_library.values() for o in found}
    assert found == {
        "2: imports broadcaster._base",
        "3: imports broadcaster._backends.memory",
        "9: self._cache in Loader",
        "13: self._queue in Deeper",
        "15: Tortoise.get_connection('default')._pool",
        "16: getattr(object, '_meta')",
    }
