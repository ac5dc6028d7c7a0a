"""The retention purge: what it deletes, what it keeps, and that one replica runs it.

``purge_expired`` is called directly with an explicit ``now`` in the future
instead of waiting days. Every test starts from empty chats and files, so the
purge's counts are this test's rows only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette

from db import chat_config
from db.chat_files import FileMeta, store_file
from db.connection import parse_database_url
from db.models import Chat, ChatFile, ChatFileLink, ChatMessage, SiteConfig, User
from db.retention import PURGE_LOCK_KEY, PurgeResult, purge_expired
from db.vocabulary import MessageRole
from resolvers.accounts import create_user
from tests.harness import PASSWORD
from tests.uploads import png

NOW = datetime.now(UTC) + timedelta(days=400)  # "now" for the purge: everything stored is old
DAY = timedelta(days=1)
WAIT_S = 5.0


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await create_user("keeper", PASSWORD)


@pytest.fixture(autouse=True)
async def empty(owner: User) -> AsyncIterator[None]:
    await Chat.all().delete()
    await ChatFile.all().delete()
    await SiteConfig.filter(key=chat_config.RETENTION_DAYS_KEY).delete()  # 30 days
    yield
    await SiteConfig.filter(key=chat_config.RETENTION_DAYS_KEY).delete()


@contextlib.asynccontextmanager
async def connection(database_url: str) -> AsyncIterator[Any]:
    """A connection of its own: another replica, or another client holding locks."""
    conn = await asyncpg.connect(**parse_database_url(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def chat(owner: User, *, archived: bool, touched: datetime, files: list[FileMeta]) -> Chat:
    """A chat with one message and links to ``files``, last touched at ``touched``."""
    chat_id = uuid.uuid4()
    row = await Chat.create(
        id=chat_id, owner=owner, root_id=chat_id, title="t", archived=archived, updated_at=touched
    )
    await ChatMessage.create(chat=row, role=MessageRole.USER, parts=[{"type": "text", "text": "x"}])
    for meta in files:
        await ChatFileLink.create(chat=row, file_id=meta.id)
    await Chat.filter(id=chat_id).update(updated_at=touched)  # the message trigger moved it
    return row


async def file(owner: User, seed: int, created: datetime | None = None) -> FileMeta:
    meta, _ = await store_file(owner.id, f"{seed}.png", "image/png", png(seed))
    if created is not None:
        await ChatFile.filter(id=meta.id).update(created_at=created)
    return meta


async def chats_left(*rows: Chat) -> list[bool]:
    return [await Chat.filter(id=row.id).exists() for row in rows]


async def files_left(*metas: FileMeta) -> list[bool]:
    return [await ChatFile.filter(id=meta.id).exists() for meta in metas]


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for ``check`` to hold, failing at a deadline."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_old_archived_chats_and_orphaned_old_files_go_the_rest_stays(owner: User) -> None:
    only_old = await file(owner, 1)
    shared = await file(owner, 2)
    recent_only = await file(owner, 3)
    live_only = await file(owner, 4)
    orphan = await file(owner, 5)
    young_orphan = await file(owner, 6, created=NOW - 2 * DAY)
    old = await chat(owner, archived=True, touched=NOW - 31 * DAY, files=[only_old, shared])
    recent = await chat(owner, archived=True, touched=NOW - 29 * DAY, files=[recent_only])
    live = await chat(owner, archived=False, touched=NOW - 300 * DAY, files=[live_only, shared])

    result = await purge_expired(now=NOW)

    assert result == PurgeResult(ran=True, chats=1, files=2)
    assert await chats_left(old, recent, live) == [False, True, True]
    assert not await ChatMessage.filter(chat_id=old.id).exists()
    assert not await ChatFileLink.filter(chat_id=old.id).exists()
    assert await files_left(only_old, orphan) == [False, False]
    assert await files_left(shared, recent_only, live_only, young_orphan) == [True] * 4
    assert await ChatFileLink.filter(chat_id=live.id).count() == 2
    assert await ChatMessage.filter(chat_id=live.id).count() == 1


async def test_archived_chats_go_in_batches_until_none_is_left(owner: User) -> None:
    rows = [
        await chat(owner, archived=True, touched=NOW - (40 + i) * DAY, files=[]) for i in range(5)
    ]
    result = await purge_expired(now=NOW, batch=2)
    assert result == PurgeResult(ran=True, chats=5, files=0)
    assert await chats_left(*rows) == [False] * 5


async def test_the_retention_period_is_the_configured_one(owner: User) -> None:
    await chat_config.set_chat_retention_days(10)
    eleven = await chat(owner, archived=True, touched=NOW - 11 * DAY, files=[])
    nine = await chat(owner, archived=True, touched=NOW - 9 * DAY, files=[])
    assert (await purge_expired(now=NOW)).chats == 1
    assert await chats_left(eleven, nine) == [False, True]


async def test_zero_days_keeps_everything_forever(owner: User) -> None:
    await chat_config.set_chat_retention_days(0)
    orphan = await file(owner, 7)
    old = await chat(owner, archived=True, touched=NOW - 3000 * DAY, files=[await file(owner, 8)])

    # The pass still runs (debug runs have their own period) but deletes no chat or file.
    assert await purge_expired(now=NOW + 10_000 * DAY) == PurgeResult(ran=True)

    assert await chats_left(old) == [True]
    assert await files_left(orphan) == [True]
    assert await ChatFileLink.filter(chat_id=old.id).count() == 1


async def test_nothing_is_purged_while_another_replica_holds_the_lock(
    owner: User, database_url: str
) -> None:
    old = await chat(owner, archived=True, touched=NOW - 60 * DAY, files=[])
    async with connection(database_url) as replica:
        assert await replica.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK_KEY)
        assert await purge_expired(now=NOW) == PurgeResult(ran=False)
        assert await chats_left(old) == [True]
        await replica.execute("SELECT pg_advisory_unlock($1)", PURGE_LOCK_KEY)
    assert await purge_expired(now=NOW) == PurgeResult(ran=True, chats=1, files=0)


async def another_replica_can_purge(database_url: str) -> None:
    """The purge lock is free: a session of its own can take it (the purging
    session itself could always take it again, advisory locks nest)."""
    async with connection(database_url) as replica:
        assert await replica.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK_KEY)
        # Unlock explicitly: a closed session's locks go only when its backend has
        # exited, which may be after the next test's purge asks for the lock.
        assert await replica.fetchval("SELECT pg_advisory_unlock($1)", PURGE_LOCK_KEY)


@contextlib.asynccontextmanager
async def purge_blocked_on(database_url: str, row: Chat) -> AsyncIterator[asyncio.Task[Any]]:
    """A purge task stuck on a row lock another client holds (it holds the purge
    lock meanwhile); the row is released when the block ends."""
    async with connection(database_url) as client:
        blocker = client.transaction()
        await blocker.start()
        await client.execute("SELECT 1 FROM chats WHERE id = $1 FOR UPDATE", row.id)
        task = asyncio.create_task(purge_expired(now=NOW))

        async def waiting_on_the_row() -> bool:
            # Inside a transaction pg_stat_activity is a snapshot taken at first
            # read: drop it, or a purge seen before it blocked is seen forever.
            await client.execute("SELECT pg_stat_clear_snapshot()")
            waiting = await client.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'WITH doomed%' AND datname = current_database()"
            )
            return bool(waiting)

        try:
            await until(waiting_on_the_row)
            yield task
        finally:
            await blocker.rollback()


async def test_of_two_concurrent_purges_only_one_runs(owner: User, database_url: str) -> None:
    old = await chat(owner, archived=True, touched=NOW - 60 * DAY, files=[])
    async with purge_blocked_on(database_url, old) as first:
        assert await asyncio.wait_for(purge_expired(now=NOW), WAIT_S) == PurgeResult(ran=False)
    assert await asyncio.wait_for(first, WAIT_S) == PurgeResult(ran=True, chats=1, files=0)
    assert await chats_left(old) == [False]
    await another_replica_can_purge(database_url)


async def test_a_purge_cancelled_midway_does_not_keep_the_lock(
    owner: User, database_url: str
) -> None:
    old = await chat(owner, archived=True, touched=NOW - 60 * DAY, files=[])
    async with purge_blocked_on(database_url, old) as stopped:
        stopped.cancel()  # e.g. the daemon shutting down
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(stopped, WAIT_S)
    assert await chats_left(old) == [True]
    await another_replica_can_purge(database_url)
    assert await purge_expired(now=NOW) == PurgeResult(ran=True, chats=1, files=0)
