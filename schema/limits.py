"""Query limits: depth, aliases, tokens and a static cost, checked before execution.

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

from db.vocabulary import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ErrorCode

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


@dataclass
class Measure:
    cost: int = 0
    depth: int = 0
    aliases: int = 0


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.aliases = 0
        self.depth = 0

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

    def walk(
        self, selection_set: SelectionSetNode | None, parent: Any, depth: int, page: int = 1
    ) -> int:
        """Cost of a selection; ``page`` multiplies the item lists of a connection."""
        if selection_set is None:
            return 0
        cost = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                times = page if sel.name.value in ITEM_FIELDS else 1
                cost += times * self._field(sel, parent, depth)
            elif isinstance(sel, InlineFragmentNode):
                target = parent
                if sel.type_condition is not None:
                    target = self.schema.get_type(sel.type_condition.name.value) or parent
                cost += self.walk(sel.selection_set, target, depth, page)
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag is not None:
                    target = self.schema.get_type(frag.type_condition.name.value) or parent
                    cost += self.walk(frag.selection_set, target, depth, page)
        return cost

    def _field(self, node: FieldNode, parent: Any, depth: int) -> int:
        if node.alias is not None:
            self.aliases += 1
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        field = parent.fields.get(name)
        if field is None:
            return 0
        self.depth = max(self.depth, depth + 1)
        named = get_named_type(field.type)
        if is_leaf_type(named):
            return 0
        page = self._size(node) if "first" in field.args or "last" in field.args else 1
        return 1 + self.walk(node.selection_set, named, depth + 1, page)


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
    cost = walker.walk(op.selection_set, root, 0)
    return Measure(cost=cost, depth=walker.depth, aliases=walker.aliases)


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


def _too_complex(limit: str, maximum: int, actual: int) -> GraphQLError:
    return GraphQLError(
        f"query {limit} {actual} exceeds the maximum of {maximum}",
        extensions={
            "code": ErrorCode.QUERY_TOO_COMPLEX.value,
            "limit": limit,
            "maximum": maximum,
            "actual": actual,
        },
    )


class LimitGuard(SchemaExtension):
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
        """Runs after ValidationCache has validated (it precedes this extension)
        and before Strawberry checks for errors, so a refusal stops execution."""
        ctx = self.execution_context
        if not ctx.pre_execution_errors and ctx.graphql_document is not None:
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
