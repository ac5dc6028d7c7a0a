"""Every error leaves with a code; unexpected ones leave with nothing else.

Replaces Strawberry's MaskErrors (which masks everything, validation included):
- ``ApiError`` from resolvers: kept, its code and facts in ``extensions``;
- request-level errors (parse, validation, variable coercion: no ``path``):
  BAD_USER_INPUT, or QUERY_TOO_COMPLEX for the token limit;
- the broadcast backend down (a subscription could not start): UNAVAILABLE with
  ``retryAfterSeconds``, and nothing about the backend itself;
- anything else: logged with the request id, masked as INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from db.vocabulary import ErrorCode
from events.hub import BackendUnavailable
from resolvers.context import RequestContext
from resolvers.errors import ApiError

log = logging.getLogger("agentgql.errors")

MASKED_MESSAGE = "Internal server error"
UNAVAILABLE_MESSAGE = "Live updates are briefly unavailable; retry shortly."


def _request_id(context: object) -> str | None:
    return context.request_id if isinstance(context, RequestContext) else None


def shape_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    original = error.original_error
    if isinstance(original, ApiError):
        error.extensions = dict(original.extensions)
        return error
    extensions = dict(error.extensions or {})
    if "code" in extensions:
        return error
    if isinstance(original, BackendUnavailable):
        log.warning("refused while the broadcast backend is down: %s", original)
        error.message = UNAVAILABLE_MESSAGE
        error.original_error = None
        error.extensions = {
            "code": ErrorCode.UNAVAILABLE.value,
            "retryAfterSeconds": max(1, math.ceil(original.retry_after_s)),
            "requestId": request_id,
        }
        return error
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        too_many_tokens = isinstance(error, GraphQLSyntaxError) and "tokens" in error.message
        code = ErrorCode.QUERY_TOO_COMPLEX if too_many_tokens else ErrorCode.BAD_USER_INPUT
        error.extensions = {**extensions, "code": code.value}
        return error
    log.error(
        "unexpected error in resolver",
        exc_info=original if original is not None else error,
        extra={"request_id": request_id, "path": error.path},
    )
    # In place: subscription frames hand their error objects on after shaping.
    error.message = MASKED_MESSAGE
    error.original_error = None
    error.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": request_id}
    return error


def shape_errors(errors: list[GraphQLError], context: object) -> None:
    """Shape a result's errors in place (every streamed subscription frame too)."""
    rid = _request_id(context)
    for error in errors:
        shape_error(error, rid)


class ErrorShaping(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            rid = _request_id(self.execution_context.context)
            result.errors = [shape_error(e, rid) for e in errors]
