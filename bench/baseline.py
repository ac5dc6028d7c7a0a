"""The raw baseline: bare Starlette, one asyncpg pool, orjson, no ORM and no GraphQL.

Served by uvicorn in its own process (``python -m uvicorn bench.baseline:app``)
so it runs on the same HTTP stack as agentgql and nothing more. It reads
``DATABASE_URL`` and the pool bounds agentgql uses (``AGENTGQL_DB_POOL_MIN`` /
``AGENTGQL_DB_POOL_MAX``) from the environment, so both sides hold equal pools.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bench.benchmark import json_response
from bench.registry import BENCHMARKS
from db.connection import SERVER_SETTINGS, keep_session, parse_database_url


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


def create_app() -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        credentials = parse_database_url(os.environ["DATABASE_URL"])
        pool = await asyncpg.create_pool(
            min_size=int(os.environ.get("AGENTGQL_DB_POOL_MIN", "1")),
            max_size=int(os.environ.get("AGENTGQL_DB_POOL_MAX", "10")),
            server_settings=SERVER_SETTINGS,  # the same pool behaviour as agentgql's
            reset=keep_session,
            **credentials,
        )
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    for benchmark in BENCHMARKS.values():
        routes.extend(benchmark.baseline_routes)
    return Starlette(routes=routes, lifespan=lifespan)


app = create_app()
