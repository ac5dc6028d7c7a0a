"""A compiled fast path for queries, with graphql-core's executor as the fallback.

graphql-core resolves a response field by field through generic machinery
(about 5 µs a field); a 50-message page has ~1000 fields, so execution alone
was most of a request. Here a validated query document is compiled once into
plans (``schema.engine.plan``), and the plans into Python source
(``schema.engine.codegen``); each run then calls the generated root function and
awaits what the resolvers left pending (``schema.engine.run``).

A resolver that raises does not stop a run: the plan produces graphql-core's
located errors itself (``schema.engine.field_errors``: same message, path, locations
and extensions, nulled at the nearest nullable parent). What the plans do not
cover — a mutation or subscription, a directive, introspection, variables that
need coercion, a non-null field that resolves to null, a value that fails to
serialize — makes the operation run through graphql-core instead (queries have
no side effects, so that is safe); every such fallback is counted by reason in
``FastExecutor.fallbacks``.

Shadow mode (``AGENTGQL_COMPILED_SHADOW=1``, or pytest's ``--shadow-compiled``)
runs every compiled answer through graphql-core as well and records any
difference in ``SHADOW_DIFFERENCES`` (and logs it): the tests fail on one.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
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

from schema.engine.codegen import Codegen
from schema.engine.field_errors import settle
from schema.engine.plan import Compiler, Fallback, FieldPlan
from schema.engine.run import Run, SimpleVariable, coerce_simple, simple_variables

log = logging.getLogger(__name__)

SHADOW_ENV = "AGENTGQL_COMPILED_SHADOW"


@dataclass
class ShadowDifference:
    """A compiled answer that graphql-core answered differently."""

    query: str
    variables: dict[str, Any] | None
    compiled: dict[str, Any]
    expected: dict[str, Any]


SHADOW_DIFFERENCES: list[ShadowDifference] = []
"""Every difference shadow mode found, in this process (tests assert it stays empty)."""

SHADOW_RUN: ContextVar[bool] = ContextVar("agentgql_shadow_run", default=False)
"""True while shadow mode's graphql-core run executes (statement counts leave it out)."""


def shadow_from_environment() -> bool:
    return os.environ.get(SHADOW_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def comparable(result: ExecutionResult) -> dict[str, Any]:
    """What a client sees of a result before error shaping: data and errors."""
    return {
        "data": result.data,
        "errors": [e.formatted for e in result.errors] if result.errors else None,
    }


@dataclass
class Compiled:
    """A query compiled once, kept per document and run as often as it comes."""

    document: DocumentNode
    operation: OperationDefinitionNode
    root: list[FieldPlan]
    run_root: Callable[[Run, Any], dict[str, Any]]
    simple_variables: list[SimpleVariable] | None = None
    source: str = ""  # the generated Python, for ``agentgql explain-query``


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
    codegen = Codegen()
    run_root = codegen.build(plans, root.name)
    variables = simple_variables(schema, operation)
    return Compiled(document, operation, plans, run_root, variables, codegen.source)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Fallback) else f"error: {type(exc).__name__}"


class FastExecutor:
    """``execute`` with the same signature as graphql-core's, for Strawberry."""

    def __init__(self, max_documents: int = 512, shadow: bool | None = None) -> None:
        self._compiled: dict[int, tuple[DocumentNode, str | None, Compiled | None, str]] = {}
        self._max = max_documents
        self.shadow = shadow_from_environment() if shadow is None else shadow
        self.fallbacks: Counter[str] = Counter()
        """Operations left to graphql-core, by reason (the plans' coverage)."""
        self.runs = 0
        """Compiled runs started."""

    def plan(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> Compiled | None:
        return self._plan(schema, document, operation_name)[0]

    def _plan(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
    ) -> tuple[Compiled | None, str]:
        key = id(document)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] is document and cached[1] == operation_name:
            return cached[2], cached[3]
        reason = ""
        try:
            compiled: Compiled | None = compile_query(schema, document, operation_name)
        except Exception as exc:  # anything odd about the document: graphql-core's job
            log.debug("not compiled: %r", exc)
            compiled, reason = None, _reason(exc)
        if len(self._compiled) >= self._max:
            self._compiled.clear()
        self._compiled[key] = (document, operation_name, compiled, reason)
        return compiled, reason

    def __call__(self, schema: GraphQLSchema, document: DocumentNode, **kwargs: Any) -> Any:
        middleware: Any = kwargs.get("middleware")
        if middleware is not None and getattr(middleware, "middlewares", None):
            self.fallbacks["middleware"] += 1
            return execute(schema, document, **kwargs)
        compiled, reason = self._plan(schema, document, kwargs.get("operation_name"))
        if compiled is None:
            self.fallbacks[reason] += 1
            return execute(schema, document, **kwargs)
        return self._run_or_fall_back(compiled, schema, kwargs)

    async def run(
        self,
        compiled: Compiled,
        schema: GraphQLSchema,
        variables: dict[str, Any] | None,
        context: Any,
        root_value: Any = None,
    ) -> ExecutionResult:
        """The result of a compiled run, field errors included (unshaped, as
        graphql-core returns them); ``Fallback`` for what the plans do not cover."""
        simple = compiled.simple_variables
        coerced = coerce_simple(simple, variables or {}) if simple is not None else None
        if coerced is None:
            definitions = compiled.operation.variable_definitions or ()
            found = get_variable_values(schema, definitions, variables or {})
            if isinstance(found, list):
                raise Fallback("variables")
            coerced = found
        self.runs += 1
        run = Run(schema, context, coerced)
        try:
            data = compiled.run_root(run, root_value)
            if run.pending:
                await run.drain()
        except Exception as exc:
            for _, _, awaitable in run.pending:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
            log.debug("fast path fell back: %r", exc)
            raise Fallback(_reason(exc)) from exc
        if not run.failures:
            return ExecutionResult(data=data)
        settled, errors = settle(data, compiled.root, run.failures)
        return ExecutionResult(data=settled, errors=errors)

    async def execute(
        self,
        compiled: Compiled,
        schema: GraphQLSchema,
        variables: dict[str, Any] | None,
        context: Any,
        root_value: Any = None,
        operation_name: str | None = None,
    ) -> ExecutionResult:
        """The compiled result, or graphql-core's when the plan does not cover
        this run (counted); checked against graphql-core in shadow mode."""
        return await self._run_or_fall_back(
            compiled,
            schema,
            {
                "variable_values": variables,
                "context_value": context,
                "root_value": root_value,
                "operation_name": operation_name,
            },
        )

    async def _run_or_fall_back(
        self, compiled: Compiled, schema: GraphQLSchema, kwargs: dict[str, Any]
    ) -> ExecutionResult:
        try:
            result = await self.run(
                compiled,
                schema,
                kwargs.get("variable_values"),
                kwargs.get("context_value"),
                kwargs.get("root_value"),
            )
        except Fallback as fallback:
            self.fallbacks[str(fallback)] += 1
            return await _graphql_core(schema, compiled.document, kwargs)
        if self.shadow:
            await self._compare(result, compiled, schema, kwargs)
        return result

    async def _compare(
        self,
        result: ExecutionResult,
        compiled: Compiled,
        schema: GraphQLSchema,
        kwargs: dict[str, Any],
    ) -> None:
        """Record ``result`` if graphql-core answers otherwise. A mismatch is
        confirmed once: when both paths, run again, agree, the data changed
        between the two runs (a live test, a daemon at work), not the answer."""
        shadowing = SHADOW_RUN.set(True)
        try:
            expected = comparable(await _graphql_core(schema, compiled.document, kwargs))
            answered = comparable(result)
            if answered == expected:
                return
            try:
                again: dict[str, Any] | None = comparable(
                    await self.run(
                        compiled,
                        schema,
                        kwargs.get("variable_values"),
                        kwargs.get("context_value"),
                        kwargs.get("root_value"),
                    )
                )
            except Fallback:
                again = None
            if again is not None and again == comparable(
                await _graphql_core(schema, compiled.document, kwargs)
            ):
                return
        finally:
            SHADOW_RUN.reset(shadowing)
        loc = compiled.operation.loc
        query = loc.source.body if loc is not None else str(compiled.operation)
        difference = ShadowDifference(query, kwargs.get("variable_values"), answered, expected)
        SHADOW_DIFFERENCES.append(difference)
        log.error("compiled answer differs from graphql-core's: %r", difference)


async def _graphql_core(
    schema: GraphQLSchema, document: DocumentNode, kwargs: dict[str, Any]
) -> ExecutionResult:
    result = execute(schema, document, **kwargs)
    return await result if inspect.isawaitable(result) else result
