"""Prometheus metrics: GraphQL operations, error codes, sockets, subscriptions.

Each app owns its registry, so several apps in one process (tests) never clash.
"""

from __future__ import annotations

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

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class Metrics:
    def __init__(self) -> None:
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

    def observe(self, name: str | None, kind: str, seconds: float) -> None:
        """One finished (non-subscription) operation."""
        label = name if name and _NAME.match(name) else ("anonymous" if not name else "other")
        self.operations.labels(label, kind).inc()
        self.duration.labels(label, kind).observe(seconds)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


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
            elif kind != OperationType.SUBSCRIPTION.value:
                self.metrics.observe(ctx.operation_name, kind, time.perf_counter() - started)
            for error in getattr(ctx.result, "errors", None) or []:
                code = (error.extensions or {}).get("code", "UNKNOWN")
                self.metrics.errors.labels(str(code)).inc()


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
