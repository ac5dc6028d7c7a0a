"""Looking one level ahead from a resolver: the arguments of a child field.

A root field can answer its children's questions in the same statement when it
knows them in advance: ``chat(id) { messages(last: 50) }`` reads the chat and
its page together (``resolvers.chats.chat``), where resolving them one after
the other costs two round trips. Only the field's own selection is scanned
(its fields, inline fragments and named fragments, each fragment once), so the
cost is linear in that selection; anything conditional (a directive) is not
looked into, and the child then simply resolves on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLObjectType,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
    value_from_ast,
)
from graphql.pyutils import Undefined

from schema.engine.strawberry_compat import raw_info_of
from schema.info import Info


def child_arguments(info: Info, type_name: str, field_name: str) -> dict[str, Any] | None:
    """The coerced arguments (GraphQL names, defaults included) of the first
    unconditional ``field_name`` selected on this field's ``type_name`` object;
    None when it is not selected that way."""
    raw = raw_info_of(info)
    owner = raw.schema.get_type(type_name)
    if not isinstance(owner, GraphQLObjectType) or field_name not in owner.fields:
        return None
    for node in _children(raw, type_name):
        if node.name.value == field_name and not node.directives:
            return _arguments(owner.fields[field_name], node, _coerced(raw.variable_values))
    return None


def _coerced(variables: Any) -> dict[str, Any]:
    """graphql-core hands a ``VariableValues``, Strawberry and the engine its dict."""
    return variables if isinstance(variables, dict) else variables.coerced


def _arguments(
    definition: GraphQLField, node: FieldNode, variables: dict[str, Any]
) -> dict[str, Any] | None:
    """Argument values as the field will receive them; None where one cannot be
    read here (the field then reports it itself)."""
    given = {argument.name.value: argument.value for argument in node.arguments or ()}
    values: dict[str, Any] = {}
    for name, argument in definition.args.items():
        value_node = given.get(name)
        if isinstance(value_node, VariableNode) and value_node.name.value in variables:
            values[name] = variables[value_node.name.value]
        elif value_node is not None and not isinstance(value_node, VariableNode):
            value = value_from_ast(value_node, argument.type)
            if value is Undefined:
                return None
            values[name] = value
        elif argument.default_value is not Undefined:
            values[name] = argument.default_value
    return values


def _children(raw: Any, type_name: str) -> Iterator[FieldNode]:
    seen: set[str] = set()
    pending: list[SelectionSetNode] = [
        node.selection_set for node in raw.field_nodes if node.selection_set is not None
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif selection.directives:
                continue
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value == type_name:
                    pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = raw.fragments[selection.name.value]
                if fragment.type_condition.name.value == type_name and not fragment.directives:
                    pending.append(fragment.selection_set)
