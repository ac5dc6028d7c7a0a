"""Errors a client is meant to read: a code from the shared vocabulary plus facts.

Any other exception escaping a resolver is a bug: it is logged and masked as
INTERNAL_SERVER_ERROR by the schema layer.
"""

from __future__ import annotations

from typing import Any

from db.spend import LimitFacts, UsageLimitExceeded
from db.vocabulary import ErrorCode


class ApiError(Exception):
    """Raised by resolvers; graphql-core copies ``extensions`` into the response."""

    def __init__(self, code: ErrorCode, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions: dict[str, Any] = {"code": code.value, **facts}


def bad_input(field: str, message: str, **facts: Any) -> ApiError:
    """BAD_USER_INPUT naming the offending input field."""
    return ApiError(ErrorCode.BAD_USER_INPUT, f"{field}: {message}", field=field, **facts)


def not_found(what: str = "object") -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} not found")


def unauthenticated(message: str = "sign in required") -> ApiError:
    return ApiError(ErrorCode.UNAUTHENTICATED, message)


def forbidden(message: str = "not allowed") -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, message)


def conflict(message: str, **facts: Any) -> ApiError:
    return ApiError(ErrorCode.CONFLICT, message, **facts)


def usage_limit_exceeded(facts: LimitFacts) -> ApiError:
    """USAGE_LIMIT_EXCEEDED with what the user needs to know: how much is spent
    (and held by calls in flight) against which limit, from where, until when."""
    return ApiError(
        ErrorCode.USAGE_LIMIT_EXCEEDED,
        str(UsageLimitExceeded(facts)),
        spentMicros=facts.spent_micros,
        reservedMicros=facts.reserved_micros,
        limitMicros=facts.limit_micros,
        resetsAt=facts.resets_at.isoformat(),
        source=facts.source.name,
        period=facts.period.name,
    )
