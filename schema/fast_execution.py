"""A compiled fast path for queries, with graphql-core's executor as the fallback.

graphql-core resolves a response field by field through generic machinery
(about 5 µs a field); a 50-message page has ~1000 fields, so execution alone
was most of a request. Here a validated query document is compiled once into
plans (per response key: how to read the value, how to complete it), then run
with plain Python: basic fields are ``attrgetter``s, leaves call their type's
``serialize``, resolvers are Strawberry's own wrappers called exactly as
graphql-core calls them. Awaitables are gathered breadth-first, one level at a
time, so dataloaders still batch across list items.

Anything unusual — a mutation or subscription, a directive, introspection, a
non-null field that resolves to null, any exception — makes the whole operation
run again through graphql-core, which then produces the normal result and
errors. Queries have no side effects, so running twice is safe.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from inspect import isawaitable
from operator import attrgetter
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.schema.schema_converter import GraphQLCoreConverter

log = logging.getLogger(__name__)

TYPENAME = "__typename"
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF


class Fallback(Exception):
    """Leave this operation to graphql-core."""


class _Info:
    """What our resolvers read from ``info``: the context (and the raw bits
    Strawberry's Info wrapper touches lazily). Anything else falls back."""

    __slots__ = ("context", "field_name", "operation", "schema", "variable_values")

    def __init__(self, context: Any, schema: GraphQLSchema, variables: dict[str, Any]) -> None:
        self.context = context
        self.schema = schema
        self.variable_values = variables
        self.field_name = ""
        self.operation = None


Completer = Callable[["_Run", Any], Any]


@dataclass
class FieldPlan:
    key: str
    node: FieldNode
    definition: GraphQLField
    getter: Callable[[Any], Any] | None  # direct read, when no wrapper is needed
    out_type: GraphQLOutputType
    # Per concrete object type, the child plans (leaves have none).
    children: dict[str, list[FieldPlan]] = field(default_factory=dict)
    possible: list[GraphQLObjectType] = field(default_factory=list)
    complete: Completer = field(default=lambda run, value: value)
    # For leaves: the Python type that needs no serializing (str for String…).
    plain: type | None = None


_PLAIN = {"String": str, "ID": str, "Int": int, "Boolean": bool, "Float": float}


def _leaf(out_type: Any, non_null: bool) -> Completer:
    """Leaves skip ``serialize`` when the value already is the wire type."""
    serialize = out_type.serialize
    plain = _PLAIN.get(out_type.name)
    if isinstance(out_type, GraphQLEnumType):
        names = {v.value: name for name, v in out_type.values.items()}

        def enum(run: _Run, value: Any) -> Any:
            if value is None:
                if non_null:
                    raise Fallback("null in non-null field")
                return None
            name = names.get(value)
            return name if name is not None else serialize(value)

        return enum

    def leaf(run: _Run, value: Any) -> Any:
        if type(value) is plain:
            return value
        if value is None:
            if non_null:
                raise Fallback("null in non-null field")
            return None
        return serialize(value)

    return leaf


def _completer(out_type: Any, plan: FieldPlan) -> Completer:
    """A closure completing values of ``out_type``, chosen once at compile time."""
    if isinstance(out_type, GraphQLNonNull) and is_leaf_type(out_type.of_type):
        return _leaf(out_type.of_type, non_null=True)
    if is_leaf_type(out_type):
        return _leaf(out_type, non_null=False)
    if isinstance(out_type, GraphQLNonNull):
        inner = _completer(out_type.of_type, plan)

        def non_null(run: _Run, value: Any) -> Any:
            if value is None:
                raise Fallback("null in non-null field")
            return inner(run, value)

        return non_null
    if isinstance(out_type, GraphQLList):
        item = _completer(out_type.of_type, plan)
        return lambda run, value: None if value is None else [item(run, v) for v in value]
    if is_abstract_type(out_type) or len(plan.possible) > 1:
        choices = [(t.is_type_of, plan.children[t.name], t.name) for t in plan.possible]
        # Our is_type_of checks are isinstance checks: decide once per Python class.
        by_class: dict[type, tuple[list[FieldPlan], str]] = {}

        def abstract(run: _Run, value: Any) -> Any:
            if value is None:
                return None
            found = by_class.get(type(value))
            if found is None:
                for check, children, name in choices:
                    if check is not None and check(value, None):  # type: ignore[arg-type]
                        found = by_class[type(value)] = (children, name)
                        break
                else:
                    raise Fallback("unresolved abstract type")
            return run.object(value, found[0], found[1])

        return abstract
    children, name = plan.children[out_type.name], out_type.name
    return lambda run, value: None if value is None else run.object(value, children, name)


def _named(t: GraphQLOutputType) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


class _Compiler:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def _applies(self, condition: Any, concrete: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        target = self.schema.get_type(condition.name.value)
        if target is concrete:
            return True
        return is_abstract_type(target) and self.schema.is_sub_type(target, concrete)

    def collect(
        self, concrete: GraphQLObjectType, selections: list[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}

        def visit(selection_set: SelectionSetNode) -> None:
            for sel in selection_set.selections:
                if sel.directives:
                    raise Fallback("directive")
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    grouped.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    if self._applies(sel.type_condition, concrete):
                        visit(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    frag = self.fragments[sel.name.value]
                    if frag.directives:
                        raise Fallback("directive")
                    if self._applies(frag.type_condition, concrete):
                        visit(frag.selection_set)

        for selection_set in selections:
            visit(selection_set)
        return grouped

    def plans(
        self, concrete: GraphQLObjectType, selections: list[SelectionSetNode]
    ) -> list[FieldPlan]:
        result: list[FieldPlan] = []
        for key, nodes in self.collect(concrete, selections).items():
            name = nodes[0].name.value
            if name == TYPENAME:
                result.append(FieldPlan(key, nodes[0], None, None, concrete))  # type: ignore[arg-type]
                continue
            if name.startswith("__"):
                raise Fallback("introspection")
            definition = concrete.fields[name]
            plan = FieldPlan(key, nodes[0], definition, _getter(definition), definition.type)
            named = _named(definition.type)
            if not is_leaf_type(named):
                subs = [n.selection_set for n in nodes if n.selection_set is not None]
                possible = (
                    list(self.schema.get_possible_types(named))
                    if is_abstract_type(named)
                    else [named]
                )
                plan.possible = possible
                plan.children = {t.name: self.plans(t, subs) for t in possible}
            plan.complete = _completer(definition.type, plan)
            if is_leaf_type(named) and not isinstance(named, GraphQLEnumType):
                plan.plain = _PLAIN.get(named.name)
            result.append(plan)
        return result


def _getter(definition: GraphQLField) -> Callable[[Any], Any] | None:
    """A direct read for basic fields and for plain ``(root)`` / ``(self, root)``
    resolvers; None where Strawberry's wrapper must run (info, args, async)."""
    strawberry_field = (definition.extensions or {}).get(DEFINITION)
    if strawberry_field is None or strawberry_field.extensions:
        return None
    if getattr(definition.resolve, "_is_default", False):
        return attrgetter(strawberry_field.python_name)
    resolver = strawberry_field.base_resolver
    if resolver is None or resolver.is_async or getattr(strawberry_field, "permission_classes", ()):
        return None
    names = list(resolver.signature.parameters)
    fn = resolver.wrapped_func
    if names == ["root"]:
        return fn  # type: ignore[no-any-return]
    if names == ["self", "root"]:
        return lambda obj: fn(obj, obj)
    return None


@dataclass
class Compiled:
    operation: OperationDefinitionNode
    root: list[FieldPlan]


def compile_query(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> Compiled:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        raise Fallback("not a single query")
    operation = operations[0]
    if operation.directives:
        raise Fallback("directive")
    root = schema.query_type
    assert root is not None
    return Compiled(operation, _Compiler(schema, document).plans(root, [operation.selection_set]))


class _Run:
    """One execution: variables, argument values and the queue of awaitables."""

    def __init__(self, schema: GraphQLSchema, context: Any, variables: VariableValues) -> None:
        self.info = _Info(context, schema, variables.coerced)
        self.variables = variables
        self.arguments: dict[int, dict[str, Any]] = {}
        self.pending: list[tuple[dict[str, Any], FieldPlan, Any]] = []

    def _args(self, plan: FieldPlan) -> dict[str, Any]:
        found = self.arguments.get(id(plan))
        if found is None:
            found = get_argument_values(plan.definition, plan.node, self.variables)
            self.arguments[id(plan)] = found
        return found

    def object(self, value: Any, plans: list[FieldPlan], type_name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for plan in plans:
            if plan.definition is None:
                out[plan.key] = type_name
                continue
            getter = plan.getter
            if getter is not None:
                resolved = getter(value)
                if type(resolved) is plan.plain:  # a leaf already in wire form
                    out[plan.key] = resolved
                    continue
            else:
                resolved = plan.definition.resolve(value, self.info, **self._args(plan))  # type: ignore[misc]
                if isawaitable(resolved):
                    out[plan.key] = None
                    self.pending.append((out, plan, resolved))
                    continue
            out[plan.key] = plan.complete(self, resolved)
        return out

    async def drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            if len(batch) == 1:  # the common case: no task needed
                values = [await batch[0][2]]
            else:
                values = await asyncio.gather(*(awaitable for _, _, awaitable in batch))
            for (out, plan, _), value in zip(batch, values, strict=True):
                out[plan.key] = plan.complete(self, value)


class FastExecutor:
    """``execute`` with the same signature as graphql-core's, for Strawberry."""

    def __init__(self, max_documents: int = 512) -> None:
        self._compiled: dict[int, tuple[DocumentNode, str | None, Compiled | None]] = {}
        self._max = max_documents

    def plan(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> Compiled | None:
        key = id(document)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] is document and cached[1] == operation_name:
            return cached[2]
        try:
            compiled: Compiled | None = compile_query(schema, document, operation_name)
        except (Fallback, KeyError):
            compiled = None
        if len(self._compiled) >= self._max:
            self._compiled.clear()
        self._compiled[key] = (document, operation_name, compiled)
        return compiled

    def __call__(self, schema: GraphQLSchema, document: DocumentNode, **kwargs: Any) -> Any:
        middleware = kwargs.get("middleware")
        plain = middleware is None or not getattr(middleware, "middlewares", ())
        compiled = self.plan(schema, document, kwargs.get("operation_name")) if plain else None
        if compiled is None:
            return execute(schema, document, **kwargs)
        return self._run(compiled, schema, document, kwargs)

    async def run_data(
        self,
        compiled: Compiled,
        schema: GraphQLSchema,
        variables: dict[str, Any] | None,
        context: Any,
        root_value: Any = None,
    ) -> dict[str, Any]:
        """The ``data`` of a successful run; ``Fallback`` for anything else."""
        definitions = compiled.operation.variable_definitions or ()
        coerced = get_variable_values(schema, definitions, variables or {})
        if isinstance(coerced, list):
            raise Fallback("variables")
        run = _Run(schema, context, coerced)
        try:
            root_name = schema.query_type.name if schema.query_type else "Query"
            data = run.object(root_value, compiled.root, root_name)
            await run.drain()
            return data
        except Exception as exc:
            for _, _, awaitable in run.pending:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
            log.debug("fast path fell back: %r", exc)
            raise Fallback(repr(exc)) from exc

    async def _run(
        self, compiled: Compiled, schema: GraphQLSchema, document: DocumentNode, kwargs: Any
    ) -> ExecutionResult:
        try:
            data = await self.run_data(
                compiled,
                schema,
                kwargs.get("variable_values"),
                kwargs.get("context_value"),
                kwargs.get("root_value"),
            )
            return ExecutionResult(data=data)
        except Fallback:
            pass  # every failure is retried the ordinary way
        result = execute(schema, document, **kwargs)
        return await result if inspect.isawaitable(result) else result
