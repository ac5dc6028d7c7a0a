"""Who runs which chat, decided in PostgreSQL so any number of workers can share.

Claiming is ``FOR UPDATE SKIP LOCKED`` on pending chats; a worker proves it
still owns a chat by its id on every heartbeat and write, and a chat whose
worker stopped heartbeating is handed back to PENDING for anyone to take. An
INTERRUPTING chat stays its worker's until the run has stopped; if the worker
is gone, nothing runs any more, so it becomes WAITING.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from db.raw_sql import fetch
from db.vocabulary import TITLE_LOCK_WORKER

_CLAIM = """
UPDATE chats SET status = 'running', worker_id = $1, started_at = now(), heartbeat_at = now()
WHERE id IN (
  SELECT id FROM chats WHERE status = 'pending' AND NOT archived
  ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
RETURNING id, owner_id, model_config_id, plan_mode, mode, parent_id, started_at
"""
_HEARTBEAT = (
    "UPDATE chats SET heartbeat_at = now() WHERE id = ANY($1::uuid[]) AND worker_id = $2 "
    "AND status IN ('running', 'interrupting') RETURNING id, status"
)
# A run that was being interrupted is over once its worker is gone: WAITING.
_RELEASED_STATUS = "CASE WHEN status = 'interrupting' THEN 'waiting' ELSE 'pending' END"
_STALE = f"""
UPDATE chats SET status = {_RELEASED_STATUS}, worker_id = NULL
WHERE id IN (
  SELECT id FROM chats
  WHERE status IN ('running', 'interrupting') AND heartbeat_at < now() - $1::interval
  FOR UPDATE SKIP LOCKED
)
RETURNING id, owner_id, status
"""
_HAND_BACK = (
    f"UPDATE chats SET status = {_RELEASED_STATUS}, worker_id = NULL "
    "WHERE worker_id = $1 AND status IN ('running', 'interrupting') "
    "RETURNING id, owner_id, status"
)


# A title regeneration holds the chat with a reserved worker id (resolvers set it).
_CLAIM_TITLE = (
    "UPDATE chats SET heartbeat_at = now() + interval '2 minutes' "
    "WHERE id = $1 AND worker_id = $2 AND heartbeat_at <= now() RETURNING id"
)
_RELEASE_TITLE = (
    "UPDATE chats SET worker_id = NULL, heartbeat_at = NULL WHERE id = $1 AND worker_id = $2"
)


async def claim_title(chat_id: str) -> bool:
    """Exactly one daemon runs a requested regeneration."""
    return bool(await fetch(_CLAIM_TITLE, uuid.UUID(chat_id), TITLE_LOCK_WORKER))


async def title_owner(chat_id: str) -> uuid.UUID | None:
    rows = await fetch("SELECT owner_id FROM chats WHERE id = $1", uuid.UUID(chat_id))
    return rows[0]["owner_id"] if rows else None


async def release_title(chat_id: str) -> None:
    await fetch(_RELEASE_TITLE, uuid.UUID(chat_id), TITLE_LOCK_WORKER)


async def owner_disabled(owner_id: uuid.UUID) -> bool:
    """Checked as each turn starts: a disabled user's chat never reaches a model,
    even one created in the instant before the account was disabled."""
    rows = await fetch("SELECT disabled FROM users WHERE id = $1", owner_id)
    return not rows or bool(rows[0]["disabled"])


async def claim(worker_id: uuid.UUID, limit: int) -> list[Any]:
    if limit <= 0:
        return []
    return await fetch(_CLAIM, worker_id, limit)


async def heartbeat(worker_id: uuid.UUID, chat_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The chats this worker still owns, with their status (RUNNING or INTERRUPTING);
    a missing one was taken or reset."""
    if not chat_ids:
        return {}
    rows = await fetch(_HEARTBEAT, chat_ids, worker_id)
    return {r["id"]: r["status"] for r in rows}


async def recover_stale(stale_after: timedelta) -> list[Any]:
    return await fetch(_STALE, stale_after)


async def hand_back(worker_id: uuid.UUID) -> list[Any]:
    """On shutdown: our running chats go back to PENDING for another worker (and
    the ones being interrupted to WAITING: their run has stopped)."""
    return await fetch(_HAND_BACK, worker_id)
