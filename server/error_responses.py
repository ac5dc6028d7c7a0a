"""HTTP error bodies in GraphQL's shape, whichever layer refuses the request.

A client handles one format: ``{"errors": [{"message", "extensions": {"code"}}]}``
with ``code`` from the shared vocabulary, be it a GraphQL result, a broken body
refused by the view, an unknown route answered by the router or a crash.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from db.vocabulary import ErrorCode

_CODE_BY_STATUS = {
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}


def code_for_status(status: int) -> ErrorCode:
    """The vocabulary's code for a status: other 4xx are the client's input, 5xx ours."""
    if status >= 500:
        return ErrorCode.INTERNAL_SERVER_ERROR
    return _CODE_BY_STATUS.get(status, ErrorCode.BAD_USER_INPUT)


def error_response(
    status: int,
    message: str,
    code: ErrorCode | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> JSONResponse:
    """A JSON error body with ``extensions.code`` (from the status unless given)."""
    ext: dict[str, object] = {"code": (code or code_for_status(status)).value, **(extensions or {})}
    body = {"errors": [{"message": message, "extensions": ext}]}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown route, wrong method, missing asset)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in {204, 304}:  # bodiless by definition
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected exception: masked, the details stay in the server log."""
    return error_response(500, "Internal server error")


EXCEPTION_HANDLERS = {HTTPException: http_exception, Exception: server_error}
