"""One run of a compiled query: its variables, argument values and awaitables.

Awaitables are gathered breadth-first, one level at a time, so dataloaders
still batch across list items. Variables of built-in scalar types without
defaults need only a type check, which gives what graphql-core's coercion
gives for valid inputs; anything else is left to graphql-core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
)
from graphql.pyutils import Undefined

from schema.query_plan import FieldPlan, renamed


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


class Run:
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
            found = self.arguments[id(plan)] = renamed(values, plan.direct)
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


# Built-in scalars whose coercion returns an input of exactly this kind unchanged.
_UNCHANGED: dict[Any, Callable[[Any], bool]] = {
    GraphQLID: lambda v: type(v) is str,
    GraphQLString: lambda v: type(v) is str,
    GraphQLBoolean: lambda v: type(v) is bool,
    GraphQLInt: lambda v: type(v) is int and GRAPHQL_MIN_INT <= v <= GRAPHQL_MAX_INT,
}
SimpleVariable = tuple[str, GraphQLVariableSignature, bool, Callable[[Any], bool]]


def simple_variables(
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


def coerce_simple(spec: list[SimpleVariable], inputs: dict[str, Any]) -> VariableValues | None:
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
