"""Sizes of a parsed document, measured before graphql-core validates it.

Validation is not linear in the document: OverlappingFieldsCanBeMerged compares
every pair of fields that share a response name in one selection set (fields
reached through fragments included), and the query planner expands a fragment
at every spread. So before validation a document is measured here, in time
linear in its size (times the fragments spread in one selection set for the
merge count): every selection node is visited once per definition, and
fragments are combined by name in dependency order, never re-walked.

- ``selections``: fields, inline fragments and spreads with every fragment
  expanded where it is spread, the size the planner and executor would see;
- ``spreads``: fragment spreads written in the document;
- ``nesting``: selection sets nested inside each other, through fragments;
- ``merges``: pairs of same-named fields in one selection set that the
  validator has to compare.

Counts are conservative (a fragment reached twice counts twice), so a fragment
bomb shows up as a huge number, computed in a few hundred steps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)


@dataclass
class DocumentSize:
    selections: int = 0
    spreads: int = 0
    nesting: int = 0
    merges: int = 0
    visits: int = 0  # selection nodes looked at: linear in the document, by design


@dataclass
class _Definition:
    """One operation's or fragment's own numbers, before fragments are combined."""

    selections: int = 0
    nesting: int = 0
    spread_at: list[tuple[str, int]] = field(default_factory=list)  # (fragment, nesting)
    top_names: Counter[str] = field(default_factory=Counter)
    top_spreads: set[str] = field(default_factory=set)
    sets: list[tuple[Counter[str], set[str]]] = field(default_factory=list)


def _response_name(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _scan(selection_set: SelectionSetNode, size: DocumentSize) -> _Definition:
    """One iterative pass over a definition's selections: no recursion (so no
    nesting is too deep for it) and every node visited once. Inline fragments
    are merged into the fields' selection set around them, as the validator
    groups fields."""
    own = _Definition()
    pending: list[tuple[SelectionSetNode, int]] = [(selection_set, 1)]
    while pending:
        names: Counter[str] = Counter()
        spreads: set[str] = set()
        inner = [pending.pop()]
        while inner:
            current, level = inner.pop()
            own.nesting = max(own.nesting, level)
            for sel in current.selections:
                size.visits += 1
                own.selections += 1
                if isinstance(sel, FieldNode):
                    names[_response_name(sel)] += 1
                    if sel.selection_set is not None:
                        pending.append((sel.selection_set, level + 1))
                elif isinstance(sel, InlineFragmentNode):
                    inner.append((sel.selection_set, level + 1))
                elif isinstance(sel, FragmentSpreadNode):
                    size.spreads += 1
                    spreads.add(sel.name.value)
                    own.spread_at.append((sel.name.value, level))
        own.sets.append((names, spreads))
    own.top_names, own.top_spreads = own.sets[0]
    return own


def _order(fragments: dict[str, _Definition]) -> list[str]:
    """Fragments so that each comes after those it spreads; a cycle (which
    validation reports) is cut where it closes."""
    done: set[str] = set()
    order: list[str] = []
    for start in fragments:
        if start in done:
            continue
        on_path = {start}
        stack = [(start, iter({name for name, _ in fragments[start].spread_at}))]
        while stack:
            name, pending = stack[-1]
            nxt = next((n for n in pending if n in fragments and n not in done), None)
            if nxt is None:
                stack.pop()
                on_path.discard(name)
                done.add(name)
                order.append(name)
            elif nxt not in on_path:
                on_path.add(nxt)
                stack.append((nxt, iter({n for n, _ in fragments[nxt].spread_at})))
    return order


def document_size(document: DocumentNode) -> DocumentSize:
    size = DocumentSize()
    fragments: dict[str, _Definition] = {}
    operations: list[_Definition] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = _scan(definition.selection_set, size)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(_scan(definition.selection_set, size))
    expanded: dict[str, int] = {}
    nesting: dict[str, int] = {}
    top: dict[str, Counter[str]] = {}
    for name in _order(fragments):
        own = fragments[name]
        size.visits += len(own.spread_at) + len(own.top_spreads)
        expanded[name] = own.selections + sum(expanded.get(f, 0) for f, _ in own.spread_at)
        nesting[name] = max(
            [own.nesting, *(level - 1 + nesting.get(f, 0) for f, level in own.spread_at)]
        )
        names = Counter(own.top_names)
        for spread in own.top_spreads:
            part = top.get(spread, Counter())
            size.visits += len(part)
            names.update(part)
        top[name] = names
    for own in operations:
        size.visits += len(own.spread_at)
        size.selections += own.selections + sum(expanded.get(f, 0) for f, _ in own.spread_at)
        size.nesting = max(
            [size.nesting, own.nesting, *(lv - 1 + nesting.get(f, 0) for f, lv in own.spread_at)]
        )
    for own in [*operations, *fragments.values()]:
        for names, spreads in own.sets:
            merged = Counter(names)
            for spread in spreads:
                part = top.get(spread, Counter())
                size.visits += 1 + len(part)
                merged.update(part)
            size.merges += sum(n * (n - 1) // 2 for n in merged.values())
    return size
