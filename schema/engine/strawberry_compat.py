"""The one place the compiled engine reaches into Strawberry beyond its public API.

Strawberry has no public way to choose the function that executes an
operation: ``Schema._get_execute_function`` (private) returns graphql-core's
``execute`` and every execution path calls it. ``CompiledQueries`` overrides it
to return the engine's executor once ``install`` has put one on the schema;
without one (``AGENTGQL_COMPILED_QUERIES=false``) Strawberry's own is used.

The rest of the private surface the engine builds on is imported from here:
- ``Schema._schema`` (the graphql-core schema) and its ``_strawberry_schema``
  back-reference; ``GraphQLCoreConverter.DEFINITION_BACKREF`` (a field's or
  scalar's Strawberry definition), with ``base_resolver.wrapped_func`` and the
  resolver's ``self/root/parent/info_parameter``; the converter's
  ``exception_handlers`` and ``scalar_registry``; ``config.info_class`` built
  with ``_raw_info``/``_field``; the default resolver's ``_is_default`` mark
  (``plan``, ``codegen``);
- ``validate_document`` (``fast_lane``), ``isoformat`` (``codegen``),
  ``StrawberryGraphQLCoreExecutionContext`` (``shared_execution``),
  ``SchemaExtensionsRunner`` and ``StreamResultContextManager``
  (``extension_runner``).

``tests/schema/test_strawberry_compat.py`` fails if an upgrade renames any of
them or stops calling the hook, so this is revisited rather than silently
bypassed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLSchema
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import isoformat

if TYPE_CHECKING:
    from schema.engine.executor import FastExecutor
    from schema.engine.fast_lane import QueryFastLane
    from schema.limits import QueryLimits

EXECUTE_HOOK = "_get_execute_function"
"""Strawberry's private method returning the function that executes an operation."""

DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
"""Key of a graphql-core type's or field's Strawberry definition in its ``extensions``."""

__all__ = [
    "DEFINITION",
    "EXECUTE_HOOK",
    "CompiledQueries",
    "SchemaExtensionsRunner",
    "StrawberryGraphQLCoreExecutionContext",
    "StreamResultContextManager",
    "graphql_core_schema",
    "install",
    "isoformat",
    "strawberry_schema_of",
    "validate_document",
]


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


def strawberry_schema_of(schema: GraphQLSchema) -> Any:
    """The Strawberry schema that built ``schema`` (None for a plain graphql-core one)."""
    return getattr(schema, "_strawberry_schema", None)


def install(schema: CompiledQueries, limits: QueryLimits) -> FastExecutor:
    """Put the engine on ``schema``: its executor for Strawberry's execution paths
    and the HTTP fast lane (same limits as the schema's ``LimitGuard``)."""
    from schema.engine.executor import FastExecutor
    from schema.engine.fast_lane import QueryFastLane

    executor = FastExecutor()
    schema.fast = executor
    schema.fast_lane = QueryFastLane(graphql_core_schema(schema), executor, limits)
    return executor
