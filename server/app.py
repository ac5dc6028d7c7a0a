"""The ASGI application: routes, middleware and the lifespan that owns the
database, the event hub and (later) the daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from db.chat_events import ChatEvents
from db.event_hub import EventHub
from schema.build import build_schema
from server.body_limit import BodyLimitMiddleware
from server.database import database
from server.graphiql import graphiql_assets_route
from server.graphql_view import AgentGraphQL
from server.health import healthz, readyz
from server.metrics import Metrics, WebSocketGauge
from server.request_ids import RequestIdMiddleware
from server.settings import Settings


def create_app(settings: Settings, *, migrate: bool = False) -> Starlette:
    metrics = Metrics()
    schema = build_schema(settings.query_limits(), extra_extensions=[metrics.extension])
    view = AgentGraphQL(schema, settings, metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.resolved_secret_key()  # generate it on first start, not on first use
        async with database(settings, migrate=migrate) as db:
            hub = EventHub(settings.broadcast_url)
            await hub.connect()
            app.state.tortoise_config = db.config
            app.state.database_url = db.url
            app.state.event_hub = hub
            app.state.chat_events = ChatEvents(hub)
            try:
                yield
            finally:
                await hub.disconnect()

    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            graphiql_assets_route(),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(WebSocketGauge, metrics=metrics),
            Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    return app
