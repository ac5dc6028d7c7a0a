"""The text rule for GraphQL input: every string an operation passes as an
argument — a literal in the document or a variable's value, at any depth of an
input object or list — is checked once, before anything runs.

graphql-core reserves the built-in ``String`` and ``ID`` scalars (they cannot
be replaced), so the rule is applied here, on the whole request, by every path
that executes: ``TextInputGuard`` for Strawberry's (HTTP, multipart, WebSocket)
and ``text_refusal`` for the query fast lane, which then leaves the request to
Strawberry's path to answer. A refusal is BAD_USER_INPUT naming the argument
path (``input.content[0].text``) and the character (``U+0000``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    Visitor,
    visit,
)
from graphql.language import SKIP
from strawberry.extensions import SchemaExtension

from db.text_rules import forbidden_character
from db.vocabulary import ErrorCode

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class _Refused:
    path: Path
    character: str
    node: ArgumentNode | None


@dataclass(frozen=True)
class _Plan:
    """What a document needs checked: a refused literal, or the places variables feed."""

    literal: _Refused | None
    usages: tuple[tuple[Path, str, ArgumentNode | None], ...]


def _path_text(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _error(refused: _Refused) -> GraphQLError:
    field = _path_text(refused.path)
    return GraphQLError(
        f"{field}: text may not contain {refused.character} (control characters other "
        "than tab and line breaks are refused)",
        refused.node,
        extensions={
            "code": ErrorCode.BAD_USER_INPUT.value,
            "field": field,
            "character": refused.character,
        },
    )


class _Collector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.literal: _Refused | None = None
        self.usages: list[tuple[Path, str, ArgumentNode | None]] = []

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        for definition in node.variable_definitions or ():
            if definition.default_value is not None:
                self._value(definition.default_value, (f"${definition.variable.name.value}",), None)

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        self._value(node.value, (node.name.value,), node)
        return SKIP

    def _value(self, value: ValueNode, path: Path, argument: ArgumentNode | None) -> None:
        if isinstance(value, StringValueNode):
            found = forbidden_character(value.value)
            if found is not None and self.literal is None:
                self.literal = _Refused(path, found, argument)
        elif isinstance(value, VariableNode):
            self.usages.append((path, value.name.value, argument))
        elif isinstance(value, ListValueNode):
            for index, item in enumerate(value.values):
                self._value(item, (*path, index), argument)
        elif isinstance(value, ObjectValueNode):
            for field in value.fields:
                self._value(field.value, (*path, field.name.value), argument)


_PLANS: dict[int, tuple[DocumentNode, _Plan]] = {}


def _plan(document: DocumentNode) -> _Plan:
    """Per document, once: documents come from the parse cache, so they repeat."""
    cached = _PLANS.get(id(document))
    if cached is not None and cached[0] is document:
        return cached[1]
    collector = _Collector()
    visit(document, collector)
    plan = _Plan(collector.literal, tuple(collector.usages))
    if len(_PLANS) >= 1024:
        _PLANS.clear()
    _PLANS[id(document)] = (document, plan)
    return plan


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string in a variable's value (object keys too), with where it is."""
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            yield at, item
        elif isinstance(item, Mapping):
            for key, inner in reversed(list(item.items())):
                if isinstance(key, str):
                    yield at, key
                stack.append((inner, (*at, str(key))))
        elif isinstance(item, list | tuple):
            stack.extend((inner, (*at, i)) for i, inner in reversed(list(enumerate(item))))


def text_refusal(
    document: DocumentNode, variables: Mapping[str, Any] | None
) -> GraphQLError | None:
    """The BAD_USER_INPUT error for the first refused string, or None."""
    plan = _plan(document)
    if plan.literal is not None:
        return _error(plan.literal)
    if not variables:
        return None
    for path, name, argument in plan.usages:
        value = variables.get(name)
        if value is None:
            continue
        for at, text in _strings(value, path):
            found = forbidden_character(text)
            if found is not None:
                return _error(_Refused(at, found, argument))
    return None


class TextInputGuard(SchemaExtension):
    """Refuses before execution; runs after validation (ValidationCache precedes
    it), so an invalid document still gets its validation errors."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if not ctx.pre_execution_errors and ctx.graphql_document is not None:
            refused = text_refusal(ctx.graphql_document, ctx.variables)
            if refused is not None:
                ctx.pre_execution_errors = [refused]
        yield
