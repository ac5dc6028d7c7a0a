"""Refuse oversized request bodies while reading them, never buffering past the cap.

Like Starlette's ``max_body_size`` but the 413 speaks GraphQL: a JSON error with
``extensions.code = PAYLOAD_TOO_LARGE``.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.vocabulary import ErrorCode
from server.error_responses import error_response


class _TooLarge(Exception):
    pass


def too_large_response(maximum: int) -> JSONResponse:
    message = f"request body exceeds {maximum} bytes"
    return error_response(
        413, message, ErrorCode.PAYLOAD_TOO_LARGE, extensions={"maximum": maximum}
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.maximum = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.maximum:
            await too_large_response(self.maximum)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.maximum:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await too_large_response(self.maximum)(scope, receive, send)
