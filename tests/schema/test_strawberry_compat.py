"""Strawberry's private surface the compiled engine hooks into is where it expects.

``schema.engine.strawberry_compat`` overrides ``Schema._get_execute_function``
and reads ``Schema._schema``. If an upgrade renames either, or stops asking the
hook for the execute function, these fail: the engine would otherwise be
silently bypassed (or fail on every request).
"""

from __future__ import annotations

import inspect

import strawberry
from graphql import GraphQLSchema

from schema.engine.strawberry_compat import (
    EXECUTE_HOOK,
    CompiledQueries,
    graphql_core_schema,
    install,
)
from schema.limits import QueryLimits


@strawberry.type
class Query:
    @strawberry.field
    def greeting(self, name: str) -> str:
        return f"hello {name}"


def test_strawberry_still_has_the_hook_and_calls_it_on_every_execution_path() -> None:
    assert callable(getattr(strawberry.Schema, EXECUTE_HOOK))
    source = inspect.getsource(strawberry.Schema)
    calls = source.count(f"self.{EXECUTE_HOOK}()")
    assert calls >= 3, "execute, execute_sync and subscriptions each ask the hook"


def test_the_graphql_core_schema_is_where_the_engine_reads_it() -> None:
    schema = CompiledQueries(query=Query)
    core = graphql_core_schema(schema)
    assert isinstance(core, GraphQLSchema)
    assert core.query_type is not None
    assert "greeting" in core.query_type.fields
    assert getattr(core, "_strawberry_schema", None) is schema  # the plans' back-reference


async def test_an_installed_engine_answers_strawberrys_queries() -> None:
    schema = CompiledQueries(query=Query)
    executor = install(schema, QueryLimits())
    result = await schema.execute('{ greeting(name: "ada") }')
    assert result.errors is None
    assert result.data == {"greeting": "hello ada"}
    assert executor.runs == 1
    assert sum(executor.fallbacks.values()) == 0


async def test_without_the_engine_strawberry_executes_as_usual() -> None:
    schema = CompiledQueries(query=Query)
    result = await schema.execute('{ greeting(name: "ada") }')
    assert result.data == {"greeting": "hello ada"}
    assert schema.fast is None
