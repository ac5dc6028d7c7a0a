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

from schema.engine.field_errors import Failure
from schema.engine.plan import Fallback, FieldPlan, InfoUnsupported, renamed


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

    def __getattr__(self, name: str) -> Any:
        raise InfoUnsupported(f"info.{name}")


class Run:
    """One execution: variables, argument values and the queue of awaitables."""

    __slots__ = ("arguments", "failures", "info", "pending", "variables")

    def __init__(self, schema: GraphQLSchema, context: Any, variables: VariableValues) -> None:
        self.info = _Info(context, schema, variables.coerced)
        self.variables = variables
        self.arguments: dict[int, dict[str, Any]] = {}
        self.pending: list[tuple[dict[str, Any], FieldPlan, Any]] = []
        self.failures: list[Failure] = []

    def fail(self, error: Exception, out: dict[str, Any], plan: FieldPlan) -> None:
        """A resolver raised: its field stays None and the error is settled at
        the end (``field_errors.settle``). A ``Fallback`` ends the run."""
        if isinstance(error, Fallback):
            raise error
        self.failures.append(Failure(out, plan, error))

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
                out, plan, awaitable = batch[0]
                try:
                    value = await awaitable
                except Exception as exc:
                    self.fail(exc, out, plan)
                    continue
                out[plan.key] = plan.complete(self, value)
                continue
            values = await asyncio.gather(
                *(awaitable for _, _, awaitable in batch), return_exceptions=True
            )
            self._settle_batch(batch, values)

    def _settle_batch(
        self, batch: list[tuple[dict[str, Any], FieldPlan, Any]], values: list[Any]
    ) -> None:
        """Failures first, in graphql-core's order: a nullable field records its
        error as its own task fails, a non-null one only once it has bubbled up
        (after the gather); then the completions, whose errors under a position
        nulled meanwhile are dropped as graphql-core never gets to them."""
        done: list[tuple[dict[str, Any], FieldPlan, Any]] = []
        bubbling: list[tuple[dict[str, Any], FieldPlan, Exception]] = []
        for (out, plan, _), value in zip(batch, values, strict=True):
            if not isinstance(value, BaseException):
                done.append((out, plan, value))
            elif not isinstance(value, Exception):
                raise value  # cancelled: not a field error
            elif isinstance(plan.out_type, GraphQLNonNull):
                bubbling.append((out, plan, value))
            else:
                self.fail(value, out, plan)
        for out, plan, error in bubbling:
            self.fail(error, out, plan)
        for out, plan, value in done:
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
