"""Query plans: what a validated query document asks for, per response key.

A selection set is compiled once, per concrete object type, into plans: how to
read each field's value (an attribute read, a plain ``(root)`` function, or a
resolver call) and its child plans. Resolvers run either through Strawberry's
own wrappers, called exactly as graphql-core calls them, or — for resolvers
with no field extensions and only scalar arguments, where the wrapper adds
nothing but argument conversion that leaves scalars unchanged — called directly
with the same arguments Strawberry would pass. Anything the plans do not cover
(a directive, introspection) raises ``Fallback``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values
from strawberry.relay.types import GlobalID
from strawberry.types.base import StrawberryMaybe, StrawberryOptional

from schema.engine.strawberry_compat import DEFINITION, strawberry_schema_of

TYPENAME = "__typename"


class Fallback(Exception):
    """Leave this operation to graphql-core; the message is the reason (counted)."""


class InfoUnsupported(Fallback, AttributeError):
    """A resolver read a part of ``info`` compiled runs do not provide. An
    ``AttributeError`` too, so ``getattr(info, name, default)`` behaves as before."""


# (run, value) → completed value; the run is a ``query_run.Run`` (not imported:
# runs depend on plans, not the other way round).
Completer = Callable[[Any, Any], Any]
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
    # Every node selecting this key (as graphql-core collects them): error locations.
    nodes: list[FieldNode] = field(default_factory=list)
    # The plan of the field whose object holds this one (None at the root), and
    # that object's type: the chain errors walk up to the nearest nullable parent.
    parent: FieldPlan | None = None
    parent_type: GraphQLObjectType | None = None
    # Per concrete object type, the child plans (leaves have none).
    children: dict[str, list[FieldPlan]] = field(default_factory=dict)
    possible: list[GraphQLObjectType] = field(default_factory=list)
    complete: Completer = field(default=lambda run, value: value)
    direct: DirectCall | None = None
    # Argument values when no variable feeds them (computed once), else None.
    constant_args: dict[str, Any] | None = None


_IMMUTABLE = (str, int, float, bool, type(None))


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


class Compiler:
    """Plans for one document, whose fragments spreads refer to by name."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.strawberry_schema = strawberry_schema_of(schema)
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
        visited: set[str] = set()  # graphql-core visits a fragment once per collection

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
                    if sel.name.value in visited:
                        continue
                    visited.add(sel.name.value)
                    frag = self.fragments[sel.name.value]
                    if frag.directives:
                        raise Fallback("directive")
                    if self._applies(frag.type_condition, concrete):
                        visit(frag.selection_set)

        for selection_set in selections:
            visit(selection_set)
        return grouped

    def plans(
        self,
        concrete: GraphQLObjectType,
        selections: list[SelectionSetNode],
        parent: FieldPlan | None = None,
    ) -> list[FieldPlan]:
        result: list[FieldPlan] = []
        for key, nodes in self.collect(concrete, selections).items():
            name = nodes[0].name.value
            if name == TYPENAME:
                typename = FieldPlan(key, nodes[0], None, None, concrete, nodes, parent, concrete)  # type: ignore[arg-type]
                result.append(typename)
                continue
            if name.startswith("__"):
                raise Fallback("introspection")
            definition = concrete.fields[name]
            plan = FieldPlan(
                key, nodes[0], definition, _getter(definition), definition.type, nodes, parent
            )
            plan.parent_type = concrete
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
                plan.children = {t.name: self.plans(t, subs, plan) for t in possible}
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
        return renamed(values, plan.direct)

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


def describe(plans: list[FieldPlan], depth: int = 0) -> list[str]:
    """The plans as indented lines: each key, its type and how it is read."""
    lines: list[str] = []
    pad = "  " * depth
    for plan in plans:
        if plan.definition is None:
            lines.append(f"{pad}{plan.key}: the type name")
            continue
        field = plan.node.name.value
        owner = plan.parent_type.name if plan.parent_type is not None else "?"
        if plan.getter is not None:
            how = f"read {plan.getter[0]} {getattr(plan.getter[1], '__name__', plan.getter[1])}"
        elif plan.direct is not None:
            how = f"resolver {owner}.{field} called directly"
        else:
            how = f"resolver {owner}.{field} through Strawberry"
        if plan.getter is None:
            args = plan.constant_args
            how += f", arguments {args}" if args is not None else ", arguments from variables"
        alias = f" (alias of {field})" if plan.key != field else ""
        lines.append(f"{pad}{plan.key}{alias}: {plan.out_type} — {how}")
        for type_name, children in plan.children.items():
            if len(plan.children) > 1:
                lines.append(f"{pad}  ... on {type_name}")
                lines += describe(children, depth + 2)
            else:
                lines += describe(children, depth + 1)
    return lines


def renamed(values: dict[str, Any], direct: DirectCall | None) -> dict[str, Any]:
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
