"""Prometheus metrics: GraphQL operations, error codes, sockets, subscriptions.

Each app owns its registry, so several apps in one process (tests) never clash.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from graphql import OperationType
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

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

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _OperationMetrics(SchemaExtension):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        subscribed = False
        try:
            yield
        finally:
            ctx = self.execution_context
            name = ctx.operation_name or "anonymous"
            name = name if _NAME.match(name) else "other"
            try:
                kind = ctx.operation_type.value
            except RuntimeError:  # the document did not parse
                kind = "invalid"
            subscribed = kind == OperationType.SUBSCRIPTION.value
            if not subscribed:
                self.metrics.operations.labels(name, kind).inc()
                elapsed = time.perf_counter() - started
                self.metrics.duration.labels(name, kind).observe(elapsed)
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
