"""A compiled fast path for queries, with graphql-core's executor as the fallback.

graphql-core resolves a response field by field through generic machinery
(about 5 µs a field); a 50-message page has ~1000 fields, so execution alone
was most of a request. Here a validated query document is compiled once into
plans (per response key: how to read the value, how to complete it), and the
plans into Python source: one function per selection set that builds its
response dict in a single expression — attribute reads inlined, leaves already
in wire form passed through, lists as comprehensions, union members picked by
a per-class table. Resolvers run either through Strawberry's own wrappers,
called exactly as graphql-core calls them, or — for resolvers with no field
extensions and only scalar arguments, where the wrapper adds nothing but
argument conversion that leaves scalars unchanged — called directly with the
same arguments Strawberry would pass. Awaitables are gathered breadth-first,
one level at a time, so dataloaders still batch across list items.

Anything unusual — a mutation or subscription, a directive, introspection, a
non-null field that resolves to null, any exception — makes the whole operation
run again through graphql-core, which then produces the normal result and
errors. Queries have no side effects, so running twice is safe.
"""

from __future__ import annotations

import asyncio
import inspect
import keyword
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from inspect import isawaitable
from operator import attrgetter
from typing import Any

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    execute,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
    get_variable_values,
)
from graphql.pyutils import Undefined
from strawberry.relay.types import GlobalID
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import isoformat
from strawberry.types.base import StrawberryMaybe, StrawberryOptional

log = logging.getLogger(__name__)

TYPENAME = "__typename"
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF


class Fallback(Exception):
    """Leave this operation to graphql-core."""


def _null() -> Any:
    raise Fallback("null in non-null field")


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
# How a field is read without a resolver call: ("attr", name), ("root", fn) for
# ``(root)`` resolvers, ("self_root", fn) for ``(self, root)`` ones.
Getter = tuple[str, Any]


@dataclass
class DirectCall:
    """A resolver called as Strawberry's wrapper would call it, minus the wrapper."""

    fn: Callable[..., Any]
    strawberry_field: Any
    info_class: type
    pass_self: bool
    root_names: tuple[str, ...]
    info_name: str | None
    python_names: dict[str, str]  # GraphQL argument name → Python parameter name


@dataclass
class FieldPlan:
    key: str
    node: FieldNode
    definition: GraphQLField
    getter: Getter | None  # direct read, when no resolver call is needed
    out_type: GraphQLOutputType
    # Per concrete object type, the child plans (leaves have none).
    children: dict[str, list[FieldPlan]] = field(default_factory=dict)
    possible: list[GraphQLObjectType] = field(default_factory=list)
    complete: Completer = field(default=lambda run, value: value)
    direct: DirectCall | None = None
    # Argument values when no variable feeds them (computed once), else None.
    constant_args: dict[str, Any] | None = None


_PLAIN = {"String": str, "ID": str, "Int": int, "Boolean": bool, "Float": float}
_IMMUTABLE = (str, int, float, bool, type(None))


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


def _named(t: GraphQLOutputType) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def _uses_variables(node: ValueNode) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ListValueNode):
        return any(_uses_variables(v) for v in node.values)
    if isinstance(node, ObjectValueNode):
        return any(_uses_variables(f.value) for f in node.fields)
    return False


class _Compiler:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.strawberry_schema = getattr(schema, "_strawberry_schema", None)
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
            if plan.getter is None:
                plan.direct = self._direct(definition)
                plan.constant_args = self._constant_args(plan)
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
            result.append(plan)
        return result

    def _constant_args(self, plan: FieldPlan) -> dict[str, Any] | None:
        """Arguments fixed by the document (literals and defaults only), by the
        names the call takes; None when a variable feeds one or a value could be
        changed by the resolver (then they are read per run)."""
        if any(_uses_variables(arg.value) for arg in plan.node.arguments or ()):
            return None
        values = get_argument_values(plan.definition, plan.node)
        if not all(isinstance(v, _IMMUTABLE) for v in values.values()):
            return None
        return _renamed(values, plan.direct)

    def _direct(self, definition: GraphQLField) -> DirectCall | None:
        """The resolver itself, when Strawberry's wrapper would only rename the
        arguments: no field extensions (permissions are extensions), no
        exception handlers, and only scalar arguments, which Strawberry passes
        through unchanged."""
        strawberry_field = (definition.extensions or {}).get(DEFINITION)
        schema = self.strawberry_schema
        if strawberry_field is None or schema is None or strawberry_field.extensions:
            return None
        resolver = strawberry_field.base_resolver
        converter = getattr(schema, "schema_converter", None)
        if resolver is None or converter is None or converter.exception_handlers:
            return None
        registry = converter.scalar_registry
        name_converter = schema.config.name_converter
        names: dict[str, str] = {}
        for argument in strawberry_field.arguments:
            arg_type = argument.type
            if isinstance(arg_type, StrawberryMaybe):
                return None
            if isinstance(arg_type, StrawberryOptional):
                arg_type = arg_type.of_type
            if arg_type is GlobalID or arg_type not in registry:
                return None
            names[name_converter.from_argument(argument)] = argument.python_name
        if set(names) != set(definition.args):
            return None
        roots = tuple(
            p.name for p in (resolver.root_parameter, resolver.parent_parameter) if p is not None
        )
        info = resolver.info_parameter
        return DirectCall(
            fn=resolver.wrapped_func,
            strawberry_field=strawberry_field,
            info_class=schema.config.info_class,
            pass_self=resolver.self_parameter is not None,
            root_names=roots,
            info_name=info.name if info is not None else None,
            python_names=names,
        )


def _renamed(values: dict[str, Any], direct: DirectCall | None) -> dict[str, Any]:
    if direct is None:
        return values
    names = direct.python_names
    return {names[k]: v for k, v in values.items()}


def _getter(definition: GraphQLField) -> Getter | None:
    """A direct read for basic fields and for plain ``(root)`` / ``(self, root)``
    resolvers; None where a resolver call is needed (info, args, async)."""
    strawberry_field = (definition.extensions or {}).get(DEFINITION)
    if strawberry_field is None or strawberry_field.extensions:
        return None
    if getattr(definition.resolve, "_is_default", False):
        return ("attr", strawberry_field.python_name)
    resolver = strawberry_field.base_resolver
    if resolver is None or resolver.is_async or getattr(strawberry_field, "permission_classes", ()):
        return None
    names = list(resolver.signature.parameters)
    fn = resolver.wrapped_func
    if names == ["root"]:
        return ("root", fn)
    if names == ["self", "root"]:
        return ("self_root", fn)
    return None


class _Codegen:
    """Python source for a tree of plans: one function per selection set."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_null": _null, "isawaitable": isawaitable}
        self.functions: list[str] = []
        self.finders: list[tuple[str, dict[type, Any], list[tuple[Any, str]]]] = []
        self.completers: list[tuple[FieldPlan, str]] = []
        self.count = 0

    def name(self, prefix: str, value: Any) -> str:
        """A fresh global name of the generated module, bound to ``value``."""
        self.count += 1
        name = f"{prefix}{self.count}"
        self.namespace[name] = value
        return name

    def build(self, plans: list[FieldPlan], type_name: str) -> Callable[[_Run, Any], Any]:
        """The root function; resolver plans get their generated completers."""
        root = self.object(plans, type_name)
        source = "\n\n".join(self.functions)
        exec(compile(source, "<compiled query>", "exec"), self.namespace)
        for find, by_class, choices in self.finders:
            members = [(check, self.namespace[fn]) for check, fn in choices]
            self.namespace[find] = _finder(by_class, members)
        for plan, completer in self.completers:
            plan.complete = self.namespace[completer]
        return self.namespace[root]  # type: ignore[no-any-return]

    def object(self, plans: list[FieldPlan], type_name: str) -> str:
        """``def o(run, v)``: the response dict of object ``v`` for ``plans``."""
        name = f"o{self.count + 1}"
        self.count += 1
        if all(plan.definition is None or plan.getter is not None for plan in plans):
            items = ", ".join(f"{plan.key!r}: {self.read(plan, type_name)}" for plan in plans)
            self.functions.append(f"def {name}(run, v):\n    return {{{items}}}")
            return name
        lines = [f"def {name}(run, v):", "    out = {}"]
        for plan in plans:
            key = repr(plan.key)
            if plan.definition is None or plan.getter is not None:
                lines.append(f"    out[{key}] = {self.read(plan, type_name)}")
                continue
            completer = self.completer(plan)
            lines += [
                f"    r = {self.call(plan)}",
                "    if isawaitable(r):",
                f"        out[{key}] = None",
                f"        run.pending.append((out, {self.name('P', plan)}, r))",
                "    else:",
                f"        out[{key}] = {completer}(run, r)",
            ]
        lines.append("    return out")
        self.functions.append("\n".join(lines))
        return name

    def read(self, plan: FieldPlan, type_name: str) -> str:
        """The completed value of a field read without a resolver call."""
        if plan.definition is None:
            return repr(type_name)
        assert plan.getter is not None
        kind, target = plan.getter
        if kind == "attr" and target.isidentifier() and not keyword.iskeyword(target):
            value = f"v.{target}"
        elif kind == "attr":
            value = f"{self.name('G', attrgetter(target))}(v)"
        else:
            fn = self.name("G", target)
            value = f"{fn}(v)" if kind == "root" else f"{fn}(v, v)"
        return self.complete(plan.out_type, plan, "x", f"(x := {value})", 0)

    def completer(self, plan: FieldPlan) -> str:
        """``def c(run, x)``: completes a resolver's value (also once awaited)."""
        name = f"c{self.count + 1}"
        self.count += 1
        body = self.complete(plan.out_type, plan, "x", "x", 0)
        self.functions.append(f"def {name}(run, x):\n    return {body}")
        self.completers.append((plan, name))
        return name

    def call(self, plan: FieldPlan) -> str:
        """The resolver call for ``plan`` on the object ``v``."""
        if plan.constant_args is None:
            args = [f"**run.args({self.name('P', plan)})"]
        elif plan.constant_args:
            args = [f"**{self.name('A', plan.constant_args)}"]
        else:
            args = []
        direct = plan.direct
        if direct is None:
            resolve = self.name("R", plan.definition.resolve)
            return f"{resolve}({', '.join(['v', 'run.info', *args])})"
        params = ["v"] if direct.pass_self else []
        params += [f"{root}=v" for root in direct.root_names]
        if direct.info_name is not None:
            info = self.name("I", direct.info_class)
            strawberry_field = self.name("S", direct.strawberry_field)
            params.append(
                f"{direct.info_name}={info}(_raw_info=run.info, _field={strawberry_field})"
            )
        return f"{self.name('R', direct.fn)}({', '.join(params + args)})"

    def complete(self, out_type: Any, plan: FieldPlan, value: str, first: str, depth: int) -> str:
        """An expression completing ``value`` of ``out_type``; ``first`` is what
        its first use evaluates (``(x := <read>)`` binds it)."""
        non_null = isinstance(out_type, GraphQLNonNull)
        inner = out_type.of_type if non_null else out_type
        if is_leaf_type(inner):
            return self.leaf(inner, non_null, value, first)
        if isinstance(inner, GraphQLList):
            item = f"y{depth}"
            each = self.complete(inner.of_type, plan, item, item, depth + 1)
            body = f"[{each} for {item} in {value}]"
        elif is_abstract_type(inner) or len(plan.possible) > 1:
            table, find = self.dispatcher(plan)
            body = f"({table}.get(type({value})) or {find}({value}))(run, {value})"
        else:
            body = f"{self.object(plan.children[inner.name], inner.name)}(run, {value})"
        missing = "_null()" if non_null else "None"
        return f"({missing} if {first} is None else {body})"

    def leaf(self, leaf_type: Any, non_null: bool, value: str, first: str) -> str:
        """Values already in wire form pass; the rest go through ``serialize``."""
        closure = self.name("L", _leaf(leaf_type, non_null))
        if isinstance(leaf_type, GraphQLEnumType):
            table = self.name("N", {v.value: name for name, v in leaf_type.values.items()})
            return f"({table}.get({first}) or {closure}(run, {value}))"
        plain = _PLAIN.get(leaf_type.name)
        if plain is not None:
            return f"({value} if type({first}) is {plain.__name__} else {closure}(run, {value}))"
        scalar = (leaf_type.extensions or {}).get(DEFINITION)
        origin = getattr(scalar, "origin", None)
        if leaf_type.serialize is isoformat and isinstance(origin, type):
            # Dates and times: ``serialize`` is ``value.isoformat()`` for the exact type.
            exact = self.name("T", origin)
            return f"({value}.isoformat() if type({first}) is {exact} else {closure}(run, {value}))"
        return f"{closure}(run, {first})"

    def dispatcher(self, plan: FieldPlan) -> tuple[str, str]:
        """A class → object-function table for a union or interface position,
        and the function that fills it on a class's first appearance."""
        by_class: dict[type, Any] = {}
        table = self.name("D", by_class)
        find = self.name("F", None)
        choices = [
            (t.is_type_of, self.object(plan.children[t.name], t.name)) for t in plan.possible
        ]
        self.finders.append((find, by_class, choices))
        return table, find


def _finder(
    by_class: dict[type, Any], choices: list[tuple[Any, Callable[..., Any]]]
) -> Callable[[Any], Any]:
    """Our is_type_of checks are isinstance checks: decide once per Python class."""

    def find(value: Any) -> Any:
        for check, fn in choices:
            if check is not None and check(value, None):
                by_class[type(value)] = fn
                return fn
        raise Fallback("unresolved abstract type")

    return find


# Built-in scalars whose coercion returns an input of exactly this kind unchanged.
_UNCHANGED: dict[Any, Callable[[Any], bool]] = {
    GraphQLID: lambda v: type(v) is str,
    GraphQLString: lambda v: type(v) is str,
    GraphQLBoolean: lambda v: type(v) is bool,
    GraphQLInt: lambda v: type(v) is int and GRAPHQL_MIN_INT <= v <= GRAPHQL_MAX_INT,
}
SimpleVariable = tuple[str, GraphQLVariableSignature, bool, Callable[[Any], bool]]


def _simple_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> list[SimpleVariable] | None:
    """Variables of built-in scalar types without defaults (``$id: ID!``), whose
    coercion is a type check; None when any needs graphql-core's coercion."""
    found: list[SimpleVariable] = []
    for node in operation.variable_definitions or ():
        if node.default_value is not None or node.directives:
            return None
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            return None
        non_null = isinstance(signature.type, GraphQLNonNull)
        check = _UNCHANGED.get(signature.type.of_type if non_null else signature.type)  # type: ignore[union-attr]
        if check is None:
            return None
        found.append((signature.name, signature, non_null, check))
    return found


def _coerce_simple(spec: list[SimpleVariable], inputs: dict[str, Any]) -> VariableValues | None:
    """What ``get_variable_values`` returns for valid inputs; None to let it
    handle (and report) anything else."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, non_null, check in spec:
        value = inputs.get(name, Undefined)
        if value is Undefined:
            if non_null:
                return None
            sources[name] = VariableValueSource(signature)  # absent: left out
            continue
        sources[name] = VariableValueSource(signature, value)
        if value is None:
            if non_null:
                return None
        elif not check(value):
            return None
        coerced[name] = value
    return VariableValues(sources, coerced)


@dataclass
class Compiled:
    operation: OperationDefinitionNode
    root: list[FieldPlan]
    run_root: Callable[[_Run, Any], dict[str, Any]]
    simple_variables: list[SimpleVariable] | None = None


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
    plans = _Compiler(schema, document).plans(root, [operation.selection_set])
    run_root = _Codegen().build(plans, root.name)
    return Compiled(operation, plans, run_root, _simple_variables(schema, operation))


class _Run:
    """One execution: variables, argument values and the queue of awaitables."""

    __slots__ = ("arguments", "info", "pending", "variables")

    def __init__(self, schema: GraphQLSchema, context: Any, variables: VariableValues) -> None:
        self.info = _Info(context, schema, variables.coerced)
        self.variables = variables
        self.arguments: dict[int, dict[str, Any]] = {}
        self.pending: list[tuple[dict[str, Any], FieldPlan, Any]] = []

    def args(self, plan: FieldPlan) -> dict[str, Any]:
        """A field's arguments (fed by variables), by the names its call takes."""
        found = self.arguments.get(id(plan))
        if found is None:
            values = get_argument_values(plan.definition, plan.node, self.variables)
            found = self.arguments[id(plan)] = _renamed(values, plan.direct)
        return found

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
        except Exception as exc:  # anything odd about the document: graphql-core's job
            log.debug("not compiled: %r", exc)
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
        simple = compiled.simple_variables
        coerced = _coerce_simple(simple, variables or {}) if simple is not None else None
        if coerced is None:
            definitions = compiled.operation.variable_definitions or ()
            found = get_variable_values(schema, definitions, variables or {})
            if isinstance(found, list):
                raise Fallback("variables")
            coerced = found
        run = _Run(schema, context, coerced)
        try:
            data = compiled.run_root(run, root_value)
            if run.pending:
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
