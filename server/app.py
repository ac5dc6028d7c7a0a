"""The ASGI application: routes, middleware and the lifespan that owns the
database, the event hub and (by default) the chat daemon."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from daemon.chat_daemon import ChatDaemon
from daemon.tool_registry import ToolRegistry
from daemon.workspace_backend import LocalWorkspaceBackend, WorkspaceBackend, create_workspace
from daemon.workspace_services import WorkspaceServices
from db.model_resolution import ensure_default_scripted_model
from db.secret_box import SecretBox
from events.announcer import ChatAnnouncer
from events.hub import EventHub
from resolvers.token_cache import TOKENS
from schema.build import build_schema
from server.body_limit import BodyLimitMiddleware
from server.database import database
from server.error_responses import EXCEPTION_HANDLERS
from server.file_routes import file_routes
from server.gateway_mount import make_gateway
from server.graphiql import graphiql_assets_route
from server.graphql_view import AgentGraphQL
from server.health import healthz, readyz
from server.metrics import Metrics, WebSocketGauge
from server.request_ids import RequestIdMiddleware
from server.settings import Settings


def make_daemon(
    settings: Settings,
    hub: EventHub,
    secrets: SecretBox,
    backend: WorkspaceBackend,
    tools: ToolRegistry | None = None,
) -> ChatDaemon:
    """The chat daemon with its workspace services (git watchers, reaper, PR status)."""
    events = ChatAnnouncer(hub)
    services = WorkspaceServices(backend, events, settings.workspace_settings())
    return ChatDaemon(hub, secrets, settings.daemon_settings(), tools, workspaces=services)


def create_app(
    settings: Settings,
    *,
    migrate: bool = False,
    run_daemon: bool = False,
    tools: ToolRegistry | None = None,
) -> Starlette:
    """The app; ``run_daemon`` runs the chat daemon in the same event loop."""
    metrics = Metrics(settings.metrics_token or None)  # empty = unset
    schema = build_schema(
        settings.query_limits(),
        extra_extensions=[metrics.extension],
        compiled_queries=settings.compiled_queries,
    )
    view = AgentGraphQL(schema, settings, metrics)

    backend = LocalWorkspaceBackend(settings.resolved_workspaces_dir())
    provision = functools.partial(create_workspace, backend)
    gateway = make_gateway()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Generated on first start, not on first use; encrypts provider API keys.
        app.state.secrets = SecretBox(settings.resolved_secret_key())
        async with database(settings, migrate=migrate) as db:
            if db.embedded:  # a fresh single-process install chats without any API key
                await ensure_default_scripted_model()
            hub = EventHub(settings.broadcast_url)
            await hub.connect()
            app.state.tortoise_config = db.config
            app.state.database_url = db.url
            app.state.event_hub = hub
            app.state.announcer = ChatAnnouncer(hub)
            TOKENS.ttl_s = settings.token_cache_s
            await TOKENS.attach(hub)
            daemon = None
            if run_daemon:
                daemon = make_daemon(settings, hub, app.state.secrets, backend, tools)
                await daemon.start()
            app.state.daemon = daemon
            try:
                yield
            finally:
                if daemon is not None:
                    await daemon.stop()
                await gateway.aclose()
                await TOKENS.detach(hub)
                await hub.disconnect()

    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            graphiql_assets_route(),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
            *file_routes(),
            *gateway.routes(),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(WebSocketGauge, metrics=metrics),
            Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.workspace_backend = backend
    app.state.provision_workspace = provision
    app.state.gateway = gateway
    return app
