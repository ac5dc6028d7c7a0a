"""Deleting what the retention period has passed: archived chats, orphaned files,
debug runs (their own period, ``db.debug_runs``; steps cascade) and AI request
logs (``db.ai_request_logs.RETENTION_DAYS``).

One replica at a time: the purge runs only while it holds a session-level
advisory lock, on the same connection that does the deletes. Deletes go in
batches so no statement holds locks on hundreds of thousands of rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db import ai_request_logs, debug_runs, raw_sql
from db.chat_config import chat_retention_days
from db.vocabulary import PURGE_BATCH

log = logging.getLogger(__name__)

# pg advisory lock keys are bigints; this one names "agentgql retention purge".
PURGE_LOCK_KEY = 0x61676E7470757267

_CHATS = (
    "WITH doomed AS (SELECT id FROM chats WHERE archived AND updated_at < $1"
    " ORDER BY updated_at LIMIT $2) DELETE FROM chats c USING doomed d WHERE c.id = d.id"
)
# Files older than the period that no remaining chat links (links cascade away
# with their chats). Young files are kept: they may be about to be sent.
_FILES = (
    "WITH doomed AS (SELECT f.id FROM chat_files f WHERE f.created_at < $1"
    " AND NOT EXISTS (SELECT 1 FROM chat_file_links l WHERE l.file_id = f.id)"
    " ORDER BY f.created_at LIMIT $2) DELETE FROM chat_files f USING doomed d WHERE f.id = d.id"
)


@dataclass(frozen=True)
class PurgeResult:
    ran: bool  # False: another replica holds the lock
    chats: int = 0
    files: int = 0
    debug_runs: int = 0
    ai_request_logs: int = 0


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _drain(conn: object, sql: str, before: datetime, batch: int) -> int:
    total = 0
    while True:
        deleted = _count(await conn.execute(sql, before, batch))  # type: ignore[attr-defined]
        total += deleted
        if deleted < batch:
            return total


async def purge_expired(now: datetime | None = None, batch: int = PURGE_BATCH) -> PurgeResult:
    """One purge pass, if retention is on and no other replica is purging."""
    days = await chat_retention_days()
    debug_days = (await debug_runs.read_settings()).retention_days  # never 0
    at = now or datetime.now(UTC)
    chats = files = runs = logs = 0
    async with raw_sql.pool().acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK_KEY):
            return PurgeResult(ran=False)
        try:
            if days:
                before = at - timedelta(days=days)
                chats = await _drain(conn, _CHATS, before, batch)
                files = await _drain(conn, _FILES, before, batch)
            debug_before = at - timedelta(days=debug_days)
            runs = await _drain(
                conn, debug_runs.PURGE_SQL, debug_before, min(batch, debug_runs.PURGE_BATCH)
            )
            logs_before = at - timedelta(days=ai_request_logs.RETENTION_DAYS)
            logs = await _drain(conn, ai_request_logs.PURGE_SQL, logs_before, batch)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", PURGE_LOCK_KEY)
    if chats or files or runs or logs:
        log.info(
            "retention purge: %d archived chat(s), %d file(s), %d debug run(s), "
            "%d AI request log(s) deleted",
            chats,
            files,
            runs,
            logs,
        )
    return PurgeResult(ran=True, chats=chats, files=files, debug_runs=runs, ai_request_logs=logs)
