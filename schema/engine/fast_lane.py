"""The HTTP fast lane: a JSON query answered without Strawberry's per-request
machinery, when nothing about it is unusual.

Parse (cached), the size limits (before validation, as ``LimitGuard`` does),
validate (cached), the same limits as ``LimitGuard`` (cached), then the
compiled plan. Anything else — a syntax or validation error, a limit
exceeded, a mutation, a document the plans do not cover — returns None and the
request takes the ordinary Strawberry path, which produces the same errors and
extensions it always does. An answer is exactly what that path would have
returned: ``data``, field errors shaped as ``process_errors`` shapes them, and
``extensions.cost``. A run the plan gives up on half-way goes through
graphql-core here, with the context already made (one token check, one
execution more, not the whole request again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, specified_rules

from schema.engine.executor import FastExecutor
from schema.engine.strawberry_compat import validate_document
from schema.errors import shape_errors
from schema.limits import QueryLimits, measure_cached, parse_cached, refusal
from schema.text_input import text_refusal

_RULES = tuple(specified_rules)


@dataclass
class FastAnswer:
    data: dict[str, Any] | None
    cost: int
    operation_name: str | None
    errors: list[GraphQLError] | None = None  # shaped: codes set, the unexpected masked


class QueryFastLane:
    def __init__(self, schema: GraphQLSchema, executor: FastExecutor, limits: QueryLimits) -> None:
        self.schema = schema
        self.executor = executor
        self.limits = limits
        self._valid: dict[int, tuple[DocumentNode, bool]] = {}

    def _is_valid(self, document: DocumentNode) -> bool:
        cached = self._valid.get(id(document))
        if cached is not None and cached[0] is document:
            return cached[1]
        valid = not validate_document(self.schema, document, _RULES)
        if len(self._valid) > 1024:
            self._valid.clear()
        self._valid[id(document)] = (document, valid)
        return valid

    async def answer(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        make_context: Callable[[], Awaitable[Any]],
    ) -> FastAnswer | None:
        """The answer, or None for the ordinary path. The context (which
        authenticates) is made only once the lane knows it will run the query:
        mutations and anything unusual go on without paying for it twice."""
        try:
            document = parse_cached(query, self.limits.max_tokens)
        except GraphQLError:
            return None
        if refusal(document, self.limits) is not None or not self._is_valid(document):
            return None
        if text_refusal(document, variables) is not None:
            return None  # Strawberry's path answers with the refusal
        found = measure_cached(self.schema, document, operation_name, variables)
        limits = self.limits
        if (
            found is None
            or found.depth > limits.max_depth
            or found.aliases > limits.max_aliases
            or found.cost > limits.max_cost
        ):
            return None
        compiled = self.executor.plan(self.schema, document, operation_name)
        if compiled is None:
            return None
        context = await make_context()
        result = await self.executor.execute(
            compiled, self.schema, variables, context, operation_name=operation_name
        )
        if result.errors:
            shape_errors(result.errors, context)
        named = compiled.operation.name
        return FastAnswer(
            data=result.data,
            cost=found.cost,
            operation_name=named.value if named else None,
            errors=result.errors,
        )
