"""A compiled fast path for queries, with graphql-core's executor as the fallback.

graphql-core resolves a response field by field through generic machinery
(about 5 µs a field); a 50-message page has ~1000 fields, so execution alone
was most of a request. Here a validated query document is compiled once into
plans (``schema.query_plan``), and the plans into Python source
(``schema.plan_codegen``); each run then calls the generated root function and
awaits what the resolvers left pending (``schema.query_run``).

Anything unusual — a mutation or subscription, a directive, introspection, a
non-null field that resolves to null, any exception — makes the whole operation
run again through graphql-core, which then produces the normal result and
errors. Queries have no side effects, so running twice is safe.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
)
from graphql.execution.values import get_variable_values

from schema.plan_codegen import Codegen
from schema.query_plan import Compiler, Fallback, FieldPlan
from schema.query_run import Run, SimpleVariable, coerce_simple, simple_variables

log = logging.getLogger(__name__)


@dataclass
class Compiled:
    """A query compiled once, kept per document and run as often as it comes."""

    operation: OperationDefinitionNode
    root: list[FieldPlan]
    run_root: Callable[[Run, Any], dict[str, Any]]
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
    plans = Compiler(schema, document).plans(root, [operation.selection_set])
    run_root = Codegen().build(plans, root.name)
    return Compiled(operation, plans, run_root, simple_variables(schema, operation))


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
        coerced = coerce_simple(simple, variables or {}) if simple is not None else None
        if coerced is None:
            definitions = compiled.operation.variable_definitions or ()
            found = get_variable_values(schema, definitions, variables or {})
            if isinstance(found, list):
                raise Fallback("variables")
            coerced = found
        run = Run(schema, context, coerced)
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
