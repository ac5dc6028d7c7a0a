"""The HTTP half of the GraphQL view: strict request parsing and JSON refusals.

Strawberry trusts the shape of what it parses: a JSON body that is not an
object, a multipart part without a file name or a subscription posted over HTTP
reach code that crashes (a 500) or a resolver that cannot use them. Here each is
refused up front with a 400 that names the problem, and every refusal the view
raises is answered in GraphQL's error shape instead of plain text.
"""

from __future__ import annotations

from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLRequestData
from strawberry.http.typevars import SubResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from db.vocabulary import ErrorCode
from resolvers.context import RequestContext
from server.error_responses import error_response

# Subscriptions stream over graphql-transport-ws only; HTTP runs queries and mutations.
_HTTP_OPERATIONS = {
    "GET": {OperationType.QUERY},
    "POST": {OperationType.QUERY, OperationType.MUTATION},
}
SUBSCRIPTION_OVER_HTTP = (
    "subscriptions run over a WebSocket (graphql-transport-ws) at this URL, not over HTTP"
)


def refusal(exc: HTTPException) -> Response:
    """A refusal raised while Strawberry handled the request, as a JSON error."""
    return error_response(exc.status_code, exc.reason)


class HttpGraphQL(GraphQL[RequestContext, None]):
    # Re-stated as Strawberry's ASGI view does, so subclasses may narrow it.
    websocket_adapter_class = ASGIWebSocketAdapter

    async def reject_websocket(self, request: WebSocket) -> WebSocket:
        """A handshake from a foreign origin: a JSON 403 where the server can send a
        body (the WebSocket denial response extension), else a bare refusal."""
        if "websocket.http.response" not in request.scope.get("extensions", {}):
            return await super().reject_websocket(request)
        message = "WebSockets from this origin are not allowed (AGENTGQL_ALLOWED_ORIGINS)"
        await request.send_denial_response(error_response(403, message, ErrorCode.FORBIDDEN))
        return request

    def parse_json(self, data: str | bytes) -> Any:
        """Bodies, multipart ``operations`` and ``map``, GET ``variables`` and
        ``extensions``: each must be a JSON object (batching is off)."""
        value = super().parse_json(data)
        if not isinstance(value, dict):
            raise HTTPException(400, "expected a JSON object")
        return value

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        """GraphQL multipart, where only parts with a file name count as files."""
        try:
            form = await request.get_form_data()
        except ValueError as exc:
            raise HTTPException(400, "Unable to parse the multipart body") from exc
        operations = self._json_field(form.form.get("operations"), "operations")
        files_map = self._json_field(form.form.get("map"), "map")
        for paths in files_map.values():
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise HTTPException(400, "every entry of `map` must be a list of paths")
        files = {k: v for k, v in form.files.items() if isinstance(v, UploadFile)}
        missing = sorted(set(files_map) - set(files))
        if missing:
            raise HTTPException(400, f"multipart part {missing[0]!r} is not a file (no filename)")
        try:
            return replace_placeholders_with_files(operations, files_map, files)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise HTTPException(400, "a `map` path does not point into `operations`") from exc

    def _json_field(self, value: object, name: str) -> dict[str, Any]:
        if not isinstance(value, str | bytes):
            raise HTTPException(400, f"the multipart field `{name}` is missing")
        parsed: dict[str, Any] = self.parse_json(value)
        return parsed

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: SubResponse,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, without subscriptions: over HTTP they would need a streaming
        transport this server does not offer."""
        method = request_adapter.method
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=_HTTP_OPERATIONS.get(method, set()),
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTION_OVER_HTTP) from exc
            raise HTTPException(400, exc.as_http_error_reason(method)) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc
