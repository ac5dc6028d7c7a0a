"""Strawberry's private surface the compiled engine hooks into is where it expects.

``schema.engine.strawberry_compat`` overrides ``Schema._get_execute_function``,
reads ``Schema._schema`` and re-exports the rest of the private surface the
engine builds on. If an upgrade renames any of it, or stops asking the hook for
the execute function, these fail: the engine would otherwise be silently
bypassed, or fail (or fall back) on every request.
"""

from __future__ import annotations

import inspect

import strawberry
from graphql import GraphQLSchema

from schema.engine.strawberry_compat import (
    DEFINITION,
    EXECUTE_HOOK,
    CompiledQueries,
    SchemaExtensionsRunner,
    StrawberryGraphQLCoreExecutionContext,
    StreamResultContextManager,
    graphql_core_schema,
    install,
    isoformat,
    strawberry_schema_of,
    validate_document,
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
    assert strawberry_schema_of(core) is schema  # the plans' back-reference


def test_the_field_definitions_the_plans_read_are_there() -> None:
    schema = CompiledQueries(query=Query)
    core = graphql_core_schema(schema)
    assert core.query_type is not None
    field = core.query_type.fields["greeting"].extensions[DEFINITION]
    resolver = field.base_resolver
    assert callable(resolver.wrapped_func)
    assert resolver.self_parameter is not None
    for name in ("root_parameter", "parent_parameter", "info_parameter", "signature", "is_async"):
        assert hasattr(resolver, name), name
    assert [a.python_name for a in field.arguments] == ["name"]
    assert field.extensions == []
    converter = schema.schema_converter
    assert converter.exception_handlers is not None
    assert str in converter.scalar_registry
    info = schema.config.info_class(_raw_info=None, _field=field)  # type: ignore[arg-type]
    assert info._field is field
    assert schema.config.name_converter.from_argument(field.arguments[0]) == "name"


def test_the_imported_private_names_still_exist() -> None:
    assert callable(validate_document)
    assert callable(isoformat)
    assert inspect.isclass(StrawberryGraphQLCoreExecutionContext)
    assert callable(SchemaExtensionsRunner.on_stream_result)
    assert callable(SchemaExtensionsRunner.get_extensions_results)
    assert StreamResultContextManager is not None


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
