"""The one Strawberry view mounted at ``/graphql`` for HTTP and graphql-transport-ws.

It builds a fresh ``RequestContext`` per HTTP request, authenticates WebSockets
in ``connection_init``, enforces the CSRF rule for cookie-authenticated posts,
serves the offline GraphiQL page and encodes responses with orjson.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from db.vocabulary import ErrorCode
from resolvers.context import NoCookie, Policy, RequestContext
from schema.engine.fast_lane import QueryFastLane
from schema.engine.shared_execution import SharedData
from server.error_responses import error_response
from server.frame_fanout import encoded_data, learn_frame
from server.graphiql import PAGE_HEADERS, graphiql_html
from server.graphql_http import HttpGraphQL, refusal
from server.metrics import Metrics
from server.request_auth import COOKIE_NAME, AuthState, credentials_of, resolve_token
from server.request_ids import current_request_id
from server.session_watch import SessionSocket, SessionWatch
from server.settings import Settings

PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-requested-with")


class ResponseCookie:
    """Sets the session cookie on the HTTP response being built."""

    def __init__(self, response: Response, secure: bool) -> None:
        self.response = response
        self.secure = secure

    def set(self, token: str, max_age_s: int) -> None:
        self.response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=max_age_s,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    def clear(self) -> None:
        self.response.delete_cookie(COOKIE_NAME, path="/", samesite="lax", httponly=True)


class WsContext(RequestContext):
    """A connection's context; ``connection_params`` is filled by Strawberry."""

    connection_params: dict[str, Any] | None = None


def csrf_refusal(request: Request) -> str | None:
    """Why a POST must be refused, or None.

    A cross-site form can post ``multipart/form-data`` or ``text/plain`` with the
    victim's cookie without a CORS preflight. Requiring JSON or a custom header
    (which forces a preflight) for cookie-authenticated posts, and a custom header
    for every multipart post, closes that door.
    """
    if request.method != "POST":
        return None
    has_header = any(request.headers.get(h, "").strip() for h in PREFLIGHT_HEADERS)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data" and not has_header:
        return "multipart requests need an Apollo-Require-Preflight or X-Requested-With header"
    cookie_only = COOKIE_NAME in request.cookies and "authorization" not in request.headers
    if cookie_only and content_type != "application/json" and not has_header:
        return "cookie-authenticated requests must be application/json or carry a preflight header"
    return None


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages are text frames; orjson gives bytes.

    An event's data shared by many subscribers is encoded once and spliced into
    each subscriber's frame (the same bytes as encoding it every time); events
    delivered directly skip this (``server.frame_fanout``).
    """

    async def send_json(self, message: Mapping[str, object]) -> None:
        payload = message.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("data"), SharedData):
            message = {**message, "payload": {**payload, "data": encoded_data(payload["data"])}}
        learn_frame(message)
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class AgentGraphQL(HttpGraphQL):
    websocket_adapter_class = TextFrames
    # Sockets close (4403) when their session ends; see server.session_watch.
    graphql_transport_ws_handler_class = SessionSocket

    def __init__(self, schema: Any, settings: Settings, metrics: Metrics | None = None) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            multipart_uploads_enabled=True,
            allowed_origins=tuple(settings.allowed_origins),
        )
        self.settings = settings
        self.metrics = metrics
        self.policy = Policy(allow_signup=settings.allow_signup)
        self.sessions = SessionWatch()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        reason = csrf_refusal(request)
        if reason is not None:
            await error_response(403, reason, ErrorCode.FORBIDDEN)(scope, receive, send)
            return
        response = None
        if request.method == "POST" and _is_json(request):
            response = await self._fast_lane(request)
        if response is None:
            try:
                response = await self.run(request)
            except HTTPException as exc:
                response = refusal(exc)
        await response(scope, receive, send)

    async def _fast_lane(self, request: Request) -> Response | None:
        """Compiled queries answered directly; None sends the request the usual way
        (the body stays cached on ``request`` for it)."""
        lane: QueryFastLane | None = getattr(self.schema, "fast_lane", None)
        if lane is None:  # compiled queries are switched off
            return None
        started = time.perf_counter()
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payload, dict):
            return None
        query, variables = payload.get("query"), payload.get("variables")
        operation_name = payload.get("operationName")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict | None)
            or not isinstance(operation_name, str | None)
        ):
            return None
        sub_response = await self.get_sub_response(request)

        async def make_context() -> RequestContext:
            return await self.get_context(request, sub_response)

        answer = await lane.answer(query, variables, operation_name, make_context)
        if answer is None:
            return None
        # Strawberry's process_result: data, errors when any, extensions.
        answered: dict[str, object] = {"data": answer.data}
        if answer.errors:
            answered["errors"] = [error.formatted for error in answer.errors]
        answered["extensions"] = {"cost": answer.cost}
        response = Response(orjson.dumps(answered), media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if self.metrics is not None:
            elapsed = time.perf_counter() - started
            succeeded = not answer.errors
            self.metrics.observe(answer.operation_name, "query", elapsed, succeeded=succeeded)
            for error in answer.errors or ():
                self.metrics.error((error.extensions or {}).get("code"))
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        state = await resolve_token(credentials_of(request).token)
        if isinstance(request, WebSocket):
            ctx: RequestContext = WsContext(request_id=current_request_id(), policy=self.policy)
        else:
            assert isinstance(response, Response)
            cookie = ResponseCookie(response, self.settings.cookie_secure)
            ctx = RequestContext(request_id=current_request_id(), policy=self.policy, cookie=cookie)
        _apply(ctx, state)
        ctx.client_address = request.client.host if request.client is not None else None
        ctx.events = getattr(request.app.state, "announcer", None)
        ctx.secrets = getattr(request.app.state, "secrets", None)
        ctx.workspaces = getattr(request.app.state, "provision_workspace", None)
        return ctx

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        """``authToken`` in connection_init wins over header, query and cookie."""
        params = getattr(context, "connection_params", None) or {}
        raw = params.get("authToken") if isinstance(params, Mapping) else None
        if raw is not None:
            if not isinstance(raw, str):
                raise ConnectionRejectionError({"code": ErrorCode.UNAUTHENTICATED.value})
            _apply(context, await resolve_token(raw))
        if context.auth_error is not None:
            # A bad token is refused at the door: close 4403 before any operation.
            raise ConnectionRejectionError({"code": ErrorCode.UNAUTHENTICATED.value})
        return await super().on_ws_connect(context)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_html(str(request.url.path)), headers=PAGE_HEADERS)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


def _apply(ctx: RequestContext, state: AuthState) -> None:
    ctx.viewer, ctx.token, ctx.auth_error = state.viewer, state.token, state.error


__all__ = ["AgentGraphQL", "NoCookie"]
