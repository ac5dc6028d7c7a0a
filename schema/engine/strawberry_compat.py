"""The one place the compiled engine hooks into Strawberry beyond its public API.

Strawberry has no public way to choose the function that executes an
operation: ``Schema._get_execute_function`` (private) returns graphql-core's
``execute`` and every execution path calls it. ``CompiledQueries`` overrides it
to return the engine's executor once ``install`` has put one on the schema;
without one (``AGENTGQL_COMPILED_QUERIES=false``) Strawberry's own is used.
The engine also reads the graphql-core schema Strawberry built (``_schema``).

``tests/schema/test_strawberry_compat.py`` fails if an upgrade renames either
or stops calling the hook, so this is revisited rather than silently bypassed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLSchema

from schema.engine.executor import FastExecutor
from schema.engine.fast_lane import QueryFastLane
from schema.limits import QueryLimits

EXECUTE_HOOK = "_get_execute_function"
"""Strawberry's private method returning the function that executes an operation."""


class CompiledQueries(strawberry.Schema):
    """A Strawberry schema whose queries the engine answers once installed."""

    fast: FastExecutor | None = None
    fast_lane: QueryFastLane | None = None

    def _get_execute_function(self) -> Callable[..., Any]:
        # Queries run through compiled plans (when on); everything else through graphql-core.
        return self.fast if self.fast is not None else super()._get_execute_function()


def graphql_core_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built (private attribute)."""
    built: GraphQLSchema = schema._schema
    return built


def install(schema: CompiledQueries, limits: QueryLimits) -> FastExecutor:
    """Put the engine on ``schema``: its executor for Strawberry's execution paths
    and the HTTP fast lane (same limits as the schema's ``LimitGuard``)."""
    executor = FastExecutor()
    schema.fast = executor
    schema.fast_lane = QueryFastLane(graphql_core_schema(schema), executor, limits)
    return executor
