"""Field errors of a compiled run, located and nulled exactly as graphql-core does.

A resolver that raises (or whose awaitable raises) does not stop a compiled
run: the generated code leaves ``None`` at the field and records a ``Failure``
(the response dict the field belongs to, its plan, the exception). Nothing
about paths is tracked while the response is built, so the fast path costs
nothing more; when the run is over, ``settle`` finds where each recorded dict
sits in the response (one walk over it), and then, in the order the failures
happened:

- the error is ``located_error(exception, nodes, path)``, as graphql-core's
  ``handle_field_error`` makes it (message, locations, path, extensions);
- the value is nulled at the field if it is nullable, else at its nearest
  nullable parent (a non-null field bubbles through non-null objects and list
  items), up to ``data: null`` when nothing on the way is nullable;
- an error whose nulled position lies at or under one already nulled is
  dropped, as graphql-core's ``CollectedErrors`` drops it (it would have
  cancelled that work).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, GraphQLList, GraphQLNonNull, located_error

from schema.engine.plan import FieldPlan

Path = tuple[str | int, ...]


@dataclass(slots=True)
class Failure:
    """A field whose resolver raised; ``out[plan.key]`` holds None meanwhile."""

    out: dict[str, Any]
    plan: FieldPlan
    error: Exception


def settle(
    data: dict[str, Any], root: list[FieldPlan], failures: list[Failure]
) -> tuple[dict[str, Any] | None, list[GraphQLError]]:
    """The response's data and errors once every failure is located and nulled."""
    anchors = _anchor_paths(data, root, {id(f.out) for f in failures})
    nulled: set[Path] = set()
    errors: list[GraphQLError] = []
    result: dict[str, Any] | None = data
    for failure in failures:
        base = anchors.get(id(failure.out))
        if base is None or result is None:
            continue  # under a position nulled already
        path = (*base, failure.plan.key)
        target = nullable_position(path, failure.plan)
        if any(target[:n] in nulled for n in range(len(target) + 1)):
            continue
        nulled.add(target)
        errors.append(located_error(failure.error, failure.plan.nodes, list(path)))
        if not target:
            result = None
        else:
            _set_null(result, target)
    return result, errors


def nullable_position(path: Path, plan: FieldPlan) -> Path:
    """Where a failure of ``plan`` at ``path`` leaves its null: the field itself
    when nullable, else the nearest nullable position above it (() = data)."""
    chain: list[FieldPlan] = []
    link: FieldPlan | None = plan
    while link is not None:
        chain.append(link)
        link = link.parent
    chain.reverse()
    types: list[Any] = []
    fields = iter(chain)
    current: Any = None
    for segment in path:
        if isinstance(segment, str):
            current = next(fields).out_type
        else:  # a list index: the item type
            inner = current.of_type if isinstance(current, GraphQLNonNull) else current
            assert isinstance(inner, GraphQLList)
            current = inner.of_type
        types.append(current)
    for end in range(len(path), 0, -1):
        if not isinstance(types[end - 1], GraphQLNonNull):
            return path[:end]
    return ()


def _set_null(data: dict[str, Any], target: Path) -> None:
    container: Any = data
    for segment in target[:-1]:
        container = container[segment]
        if container is None:
            return
    container[target[-1]] = None


def _composites(plan_lists: Iterable[list[FieldPlan]]) -> dict[str, list[FieldPlan]]:
    """Per response key, the plans whose values hold objects (leaves can hold
    dicts too, e.g. JSON scalars: those are never walked)."""
    found: dict[str, list[FieldPlan]] = {}
    for plans in plan_lists:
        for plan in plans:
            if plan.children:
                found.setdefault(plan.key, []).append(plan)
    return found


def _anchor_paths(data: dict[str, Any], root: list[FieldPlan], wanted: set[int]) -> dict[int, Path]:
    """Where in the response each wanted dict (by identity) sits."""
    found: dict[int, Path] = {}
    stack: list[tuple[Any, Path, dict[str, list[FieldPlan]]]] = [(data, (), _composites([root]))]
    while stack and len(found) < len(wanted):
        value, path, composites = stack.pop()
        if isinstance(value, dict):
            if id(value) in wanted:
                found[id(value)] = path
            for key, plans in composites.items():
                child = value.get(key)
                if child is not None:
                    below = _composites(c for p in plans for c in p.children.values())
                    stack.append((child, (*path, key), below))
        elif isinstance(value, list):
            stack.extend((item, (*path, i), composites) for i, item in enumerate(value))
    return found
