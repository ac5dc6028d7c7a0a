"""Prometheus metrics: GraphQL operations, error codes, sockets, subscriptions.

Each app owns its registry, so several apps in one process (tests) never clash.
Label values come from clients, so they are bounded: an operation name becomes a
label only once an operation of that name succeeded, and only the first
``MAX_OPERATION_NAMES`` of them (the rest count as ``other``); error codes
outside the vocabulary count as ``other``. ``/metrics`` takes an optional
bearer token.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from db.vocabulary import ErrorCode
from server.error_responses import error_response

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_NAMES = 200
OTHER = "other"
_CODES = frozenset(code.value for code in ErrorCode)


class Metrics:
    def __init__(self, token: str | None = None, max_names: int = MAX_OPERATION_NAMES) -> None:
        self.token = token
        self.max_names = max_names
        self.names: set[str] = set()
        self.registry = CollectorRegistry()
        self.operations = Counter(
            "agentgql_graphql_operations_total",
            "GraphQL operations by name and type.",
            ["operation", "type"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "agentgql_graphql_operation_seconds",
            "GraphQL operation duration by name and type.",
            ["operation", "type"],
            registry=self.registry,
        )
        self.errors = Counter(
            "agentgql_graphql_errors_total",
            "GraphQL errors by extensions.code.",
            ["code"],
            registry=self.registry,
        )
        self.websockets = Gauge(
            "agentgql_websocket_connections", "Open WebSocket connections.", registry=self.registry
        )
        self.subscriptions = Gauge(
            "agentgql_active_subscriptions", "Running subscriptions.", registry=self.registry
        )

    def extension(self) -> SchemaExtension:
        return _OperationMetrics(self)

    def observe(self, name: str | None, kind: str, seconds: float, *, succeeded: bool) -> None:
        """One finished (non-subscription) operation."""
        label = self._label(name, succeeded)
        self.operations.labels(label, kind).inc()
        self.duration.labels(label, kind).observe(seconds)

    def _label(self, name: str | None, succeeded: bool) -> str:
        """A name earns its own series by succeeding, while there is room: names
        from failed or invalid documents are anyone's to invent."""
        if not name:
            return "anonymous"
        if name in self.names:
            return name
        if succeeded and len(self.names) < self.max_names and _NAME.match(name):
            self.names.add(name)
            return name
        return OTHER

    def error(self, code: object) -> None:
        label = code if isinstance(code, str) and code in _CODES else OTHER
        self.errors.labels(label).inc()

    async def endpoint(self, request: Request) -> Response:
        if self.token is not None and not self._authorized(request):
            return error_response(
                401,
                "/metrics needs its bearer token (AGENTGQL_METRICS_TOKEN)",
                ErrorCode.UNAUTHENTICATED,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def _authorized(self, request: Request) -> bool:
        assert self.token is not None
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        offered = value.strip().encode() if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(offered, self.token.encode())


class _OperationMetrics(SchemaExtension):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.subscribed = False

    def on_execute(self) -> Iterator[None]:
        # The operation type is known from here on; a subscription counts as
        # active until its operation ends (the client stopped or disconnected).
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION:
            self.subscribed = True
            self.metrics.subscriptions.inc()
        yield

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            ctx = self.execution_context
            try:
                kind = ctx.operation_type.value
            except RuntimeError:  # the document did not parse
                kind = "invalid"
            if self.subscribed:
                self.metrics.subscriptions.dec()
            errors = getattr(ctx.result, "errors", None) or []
            if not self.subscribed and kind != OperationType.SUBSCRIPTION.value:
                elapsed = time.perf_counter() - started
                succeeded = kind != "invalid" and not errors
                self.metrics.observe(ctx.operation_name, kind, elapsed, succeeded=succeeded)
            for error in errors:
                self.metrics.error((error.extensions or {}).get("code"))


class WebSocketGauge:
    """Counts open WebSocket connections (ASGI middleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        self.metrics.websockets.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.websockets.dec()
