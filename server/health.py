"""Liveness and readiness: ``/healthz`` says the process runs, ``/readyz`` that it
can serve (database reachable, migrations current, broadcast connected)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import Tortoise

from db.migrator import pending_migrations
from db.vocabulary import ErrorCode
from events.hub import EventHub

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _database_problem(config: dict[str, Any]) -> str | None:
    try:
        conn = Tortoise.get_connection("default")
        await conn.execute_query("SELECT 1")
    except Exception as exc:
        log.warning("readiness: database unreachable", exc_info=True)
        return f"database unreachable: {type(exc).__name__}"
    try:
        pending = await pending_migrations(config)
    except Exception as exc:
        return f"migration state unreadable: {type(exc).__name__}"
    if pending:
        return f"migrations pending: {', '.join(pending)}"
    return None


async def readyz(request: Request) -> JSONResponse:
    config: dict[str, Any] = request.app.state.tortoise_config
    hub: EventHub = request.app.state.event_hub
    problems = []
    if (problem := await _database_problem(config)) is not None:
        problems.append(problem)
    if not await hub.ping():
        problems.append("broadcast backend not connected")
    if problems:
        # ``errors`` in GraphQL's shape, like every other refusal; ``problems`` for probes.
        code = ErrorCode.UNAVAILABLE.value  # a dependency is down: retry, nothing broke
        errors = [{"message": p, "extensions": {"code": code}} for p in problems]
        body = {"status": "unavailable", "problems": problems, "errors": errors}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready"})
