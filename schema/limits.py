"""Query limits: depth, aliases, tokens and a static cost, checked before execution.

Before validation a document's size is checked (fragment spreads, nesting,
selections with fragments expanded, field merges; see ``document_walk``), so
graphql-core's validator, whose field-merge rule is quadratic, only ever sees
bounded documents. Every walk is linear: fragments are measured once and
reused where they are spread.

Cost model: a scalar costs 0, an object field 1 plus its selection; in a
connection (a field taking ``first``/``last``) its ``edges`` and ``nodes`` count
``first`` times (page size defaulted and clamped like the resolvers do), its
``pageInfo`` once. Unions sum their fragments.
Introspection is exempt from depth and cost, so GraphiQL always works.
The computed cost is returned in ``extensions.cost`` of every response.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from db.vocabulary import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ErrorCode
from schema.document_walk import DocumentSize, document_size

# The fields of a connection that repeat once per item of the page.
ITEM_FIELDS = frozenset({"edges", "nodes"})


@functools.lru_cache(maxsize=512)
def parse_cached(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_cost: int = 20000
    # Checked before validation (schema/document_walk.py says why).
    max_selections: int = 1000
    max_fragment_spreads: int = 100
    max_merges: int = 1000
    max_nesting: int = 64


@dataclass
class Measure:
    cost: int = 0
    depth: int = 0
    aliases: int = 0
    visits: int = 0  # selection nodes walked: each fragment once per type condition


@dataclass(frozen=True)
class _Part:
    """A selection's numbers; ``items`` is the cost of a connection's item lists
    in it, which the page size multiplies, ``flat`` the rest."""

    items: int = 0
    flat: int = 0
    depth: int = 0
    aliases: int = 0

    def __add__(self, other: _Part) -> _Part:
        return _Part(
            self.items + other.items,
            self.flat + other.flat,
            max(self.depth, other.depth),
            self.aliases + other.aliases,
        )


class _Walker:
    """The static cost walk. A fragment is walked once per type it lands on and
    its numbers reused at every spread, so a fragment spread twice by a
    fragment spread twice... costs one walk, not 2^n."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.visits = 0
        self._memo: dict[tuple[str, str], _Part] = {}

    def _size(self, node: FieldNode) -> int:
        size: int | None = None
        for arg in node.arguments or ():
            if arg.name.value not in {"first", "last"}:
                continue
            value: Any = None
            if isinstance(arg.value, IntValueNode):
                value = int(arg.value.value)
            elif isinstance(arg.value, VariableNode):
                value = self.variables.get(arg.value.name.value)
            if isinstance(value, int):
                size = max(size or 0, value)
        return min(max(size if size is not None else DEFAULT_PAGE_SIZE, 0), MAX_PAGE_SIZE)

    def walk(self, selection_set: SelectionSetNode | None, parent: Any) -> _Part:
        if selection_set is None:
            return _Part()
        part = _Part()
        for sel in selection_set.selections:
            self.visits += 1
            if isinstance(sel, FieldNode):
                cost, depth, aliases = self._field(sel, parent)
                item = sel.name.value in ITEM_FIELDS
                part += _Part(cost if item else 0, 0 if item else cost, depth, aliases)
            elif isinstance(sel, InlineFragmentNode):
                target = parent
                if sel.type_condition is not None:
                    target = self.schema.get_type(sel.type_condition.name.value) or parent
                part += self.walk(sel.selection_set, target)
            elif isinstance(sel, FragmentSpreadNode):
                part += self._fragment(sel.name.value, parent)
        return part

    def _fragment(self, name: str, parent: Any) -> _Part:
        frag = self.fragments.get(name)
        if frag is None:
            return _Part()
        target = self.schema.get_type(frag.type_condition.name.value) or parent
        key = (name, getattr(target, "name", ""))
        found = self._memo.get(key)
        if found is None:
            self._memo[key] = _Part()  # a cycle (validation refuses those) adds nothing
            found = self._memo[key] = self.walk(frag.selection_set, target)
        return found

    def _field(self, node: FieldNode, parent: Any) -> tuple[int, int, int]:
        """Cost, depth and aliases of one field."""
        aliases = 1 if node.alias is not None else 0
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0, 0, aliases
        field = parent.fields.get(name)
        if field is None:
            return 0, 0, aliases
        named = get_named_type(field.type)
        if is_leaf_type(named):
            return 0, 1, aliases
        page = self._size(node) if "first" in field.args or "last" in field.args else 1
        inner = self.walk(node.selection_set, named)
        return 1 + page * inner.items + inner.flat, 1 + inner.depth, aliases + inner.aliases


def measure(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> Measure | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    op = operations[0]
    root = schema.get_root_type(op.operation)
    walker = _Walker(schema, fragments, variables or {})
    found = walker.walk(op.selection_set, root)
    return Measure(
        cost=found.items + found.flat,
        depth=found.depth,
        aliases=found.aliases,
        visits=walker.visits,
    )


_MEASURED: dict[tuple[int, str | None, str], tuple[Any, Measure | None]] = {}


def measure_cached(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> Measure | None:
    """``measure`` once per document, operation and integer variables (only
    ``first``/``last`` change the result; which variables feed them needs a walk)."""
    ints = ",".join(f"{k}={v}" for k, v in sorted((variables or {}).items()) if type(v) is int)
    key = (id(document), operation_name, ints)
    cached = _MEASURED.get(key)
    if cached is not None and cached[0] is document:
        return cached[1]
    found = measure(schema, document, operation_name, variables)
    if len(_MEASURED) > 2048:
        _MEASURED.clear()
    _MEASURED[key] = (document, found)
    return found


_LABELS = {"fragmentSpreads": "fragment spreads", "merges": "field merges"}


def _too_complex(limit: str, maximum: int, actual: int) -> GraphQLError:
    return GraphQLError(
        f"query {_LABELS.get(limit, limit)} {actual} exceeds the maximum of {maximum}",
        extensions={
            "code": ErrorCode.QUERY_TOO_COMPLEX.value,
            "limit": limit,
            "maximum": maximum,
            "actual": actual,
        },
    )


_SIZED: dict[int, tuple[DocumentNode, DocumentSize]] = {}


def size_cached(document: DocumentNode) -> DocumentSize:
    """``document_size`` once per (cached) parsed document."""
    cached = _SIZED.get(id(document))
    if cached is not None and cached[0] is document:
        return cached[1]
    found = document_size(document)
    if len(_SIZED) > 2048:
        _SIZED.clear()
    _SIZED[id(document)] = (document, found)
    return found


def refusal(document: DocumentNode, limits: QueryLimits) -> GraphQLError | None:
    """The error for the first size limit a document exceeds, checked before
    validation so graphql-core never sees a document it would be slow on."""
    return refusal_of_size(size_cached(document), limits)


def refusal_of_size(size: DocumentSize, limits: QueryLimits) -> GraphQLError | None:
    for name, maximum, actual in (
        ("fragmentSpreads", limits.max_fragment_spreads, size.spreads),
        ("nesting", limits.max_nesting, size.nesting),
        ("selections", limits.max_selections, size.selections),
        ("merges", limits.max_merges, size.merges),
    ):
        if actual > maximum:
            return _too_complex(name, maximum, actual)
    return None


_VALIDATED: dict[tuple[int, tuple[Any, ...]], tuple[DocumentNode, list[GraphQLError]]] = {}


def validate_cached(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[Any, ...]
) -> list[GraphQLError]:
    """graphql-core's validation (as Strawberry runs it) once per parsed document."""
    key = (id(document), rules)
    cached = _VALIDATED.get(key)
    if cached is not None and cached[0] is document:
        return cached[1]
    errors = validate_document(schema, document, rules)
    if len(_VALIDATED) > 1024:
        _VALIDATED.clear()
    _VALIDATED[key] = (document, errors)
    return errors


class LimitGuard(SchemaExtension):
    """Parses (cached, token limit), refuses oversized documents, validates
    (cached) and refuses by depth, aliases and cost, in that order."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits
        self.measured: Measure | None = None

    def on_parse(self) -> Iterator[None]:
        """Parse through an LRU cache, with the token limit.

        Unlike Strawberry's ParserCache, a parse error is left for Strawberry's own
        parse step to raise, inside its handler, so every extension still sees
        the failed operation finish.
        """
        ctx = self.execution_context
        ctx.parse_options["max_tokens"] = self.limits.max_tokens
        if ctx.graphql_document is None and ctx.query is not None:
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = parse_cached(ctx.query, self.limits.max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        """Sets ``pre_execution_errors`` before Strawberry looks at them (its own
        validation then does not run), so a refusal stops execution."""
        ctx = self.execution_context
        document = ctx.graphql_document
        if ctx.pre_execution_errors is None and document is not None:
            refused = refusal(document, self.limits)
            if refused is not None:
                ctx.pre_execution_errors = [refused]
            else:
                rules = tuple(ctx.validation_rules)
                ctx.pre_execution_errors = validate_cached(ctx.schema._schema, document, rules)
                if not ctx.pre_execution_errors:
                    self._check(ctx)
        yield

    def _check(self, ctx: Any) -> None:
        found = measure_cached(
            ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
        )
        self.measured = found
        if found is None:
            return
        limits = self.limits
        for name, maximum, actual in (
            ("depth", limits.max_depth, found.depth),
            ("aliases", limits.max_aliases, found.aliases),
            ("cost", limits.max_cost, found.cost),
        ):
            if actual > maximum:
                ctx.pre_execution_errors = [_too_complex(name, maximum, actual)]
                return

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.measured.cost} if self.measured is not None else {}
