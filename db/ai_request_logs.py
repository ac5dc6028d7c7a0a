"""AI request logs: writing one row per model call with its spend, and reading them.

``record`` is the one way a row is written: in one transaction it settles the
call's hold on the spend ledger (``db.spend.settle``) and inserts the row, so the
log and the money never disagree; a call that cost nothing known gives its hold
back instead. The gateway calls it for every request; the daemon settles its own
model calls with their messages and ``add``s their rows (client ``AGENTGQL``, with
the chat) in that same transaction.

Rows are metrics only and are purged in batches after ``RETENTION_DAYS``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import Tortoise
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from db import spend
from db.costing import Usage
from db.models import AiRequestLog
from db.models.gateway import CLIENT_MAX, SESSION_ID_MAX, USER_AGENT_MAX

# Request logs are kept this long (like Helicone's bodies: about three months).
RETENTION_DAYS = 90
PURGE_BATCH = 1000
UNKNOWN_CLIENT = "Unknown"

PURGE_SQL = (
    "WITH doomed AS (SELECT id FROM ai_request_logs WHERE started_at < $1"
    " ORDER BY started_at LIMIT $2) DELETE FROM ai_request_logs l USING doomed d WHERE l.id = d.id"
)
# The distinct clients, one index probe each (a loose index scan), not a full scan.
_CLIENTS_SQL = """
WITH RECURSIVE c AS (
  (SELECT client FROM ai_request_logs ORDER BY client LIMIT 1)
  UNION ALL
  SELECT (SELECT l.client FROM ai_request_logs l WHERE l.client > c.client
          ORDER BY l.client LIMIT 1) FROM c WHERE c.client IS NOT NULL
) SELECT client FROM c WHERE client IS NOT NULL
"""
_USER_CLIENTS_SQL = "SELECT DISTINCT client FROM ai_request_logs WHERE user_id = $1 ORDER BY client"


@dataclass(frozen=True, slots=True)
class RequestLogEntry:
    """What one model call leaves in the log (usage ``None``: none was reported)."""

    user_id: uuid.UUID
    client: str
    user_agent: str | None
    session_id: str | None
    provider: str
    model: str
    model_config_id: uuid.UUID | None
    endpoint: str
    stream: bool
    status: int
    started_at: datetime
    duration_ms: int
    time_to_first_token_ms: int | None = None
    usage: Usage | None = None
    cost_micros: int | None = None
    chat_id: uuid.UUID | None = None

    def columns(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "user_id": self.user_id,
            "client": self.client[:CLIENT_MAX],
            "user_agent": self.user_agent[:USER_AGENT_MAX] if self.user_agent else None,
            "session_id": self.session_id[:SESSION_ID_MAX] if self.session_id else None,
            "provider": self.provider[:32],
            "model": self.model[:200],
            "model_config_id": self.model_config_id,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "status": self.status,
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
            "cache_read_tokens": usage.cache_read_tokens if usage else None,
            "cache_write_tokens": usage.cache_write_tokens if usage else None,
            "cost_micros": self.cost_micros,
            "started_at": self.started_at,
            "duration_ms": max(self.duration_ms, 0),
            "time_to_first_token_ms": self.time_to_first_token_ms,
            "chat_id": self.chat_id,
        }


async def add(conn: Any, entry: RequestLogEntry) -> None:
    """Insert a row in the caller's transaction (the daemon's, after its settle)."""
    await AiRequestLog.create(**entry.columns(), using_db=conn)


async def record(
    entry: RequestLogEntry, hold: spend.Hold | None, charge: spend.Charge | None
) -> AiRequestLog:
    """Write the row; with a ``charge``, settle ``hold`` in the same transaction,
    without one, release it (the call is known to have cost nothing)."""
    if charge is None:
        await spend.release(hold)
        return await AiRequestLog.create(**entry.columns())
    async with in_transaction() as conn:
        await spend.settle(conn, hold, charge)
        return await AiRequestLog.create(**entry.columns(), using_db=conn)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """``user_id`` None: every user's rows (the caller checked the permission)."""

    user_id: uuid.UUID | None = None
    clients: Sequence[str] | None = None
    provider: str | None = None
    model: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    empty: bool = False  # matches nothing (a member asking for another user's rows)


def filtered(where: LogFilter) -> QuerySet[AiRequestLog]:
    query = AiRequestLog.all()
    if where.empty:
        return query.filter(id__lt=0)  # ids are positive
    if where.user_id is not None:
        query = query.filter(user_id=where.user_id)
    if where.clients:
        query = query.filter(client__in=list(where.clients))
    if where.provider:
        query = query.filter(provider=where.provider)
    if where.model:
        query = query.filter(model=where.model)
    if where.started_from is not None:
        query = query.filter(started_at__gte=where.started_from)
    if where.started_to is not None:
        query = query.filter(started_at__lt=where.started_to)
    return query


async def clients(user_id: uuid.UUID | None) -> list[str]:
    """The distinct clients seen (of one user's rows, or of all)."""
    conn = Tortoise.get_connection("default")
    if user_id is None:
        _, rows = await conn.execute_query(_CLIENTS_SQL)
    else:
        _, rows = await conn.execute_query(_USER_CLIENTS_SQL, [user_id])
    return [str(row["client"]) for row in rows]


async def by_ids(ids: Sequence[int], user_id: uuid.UUID | None) -> dict[int, AiRequestLog]:
    query = AiRequestLog.filter(id__in=list(ids))
    if user_id is not None:
        query = query.filter(user_id=user_id)
    return {row.id: row for row in await query}
