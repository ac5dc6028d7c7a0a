"""A lost backend is detected, rebuilt and reported: never a silent hang.

The Redis test runs its own redis-server on a free port, SIGKILLs it and starts
it again on the same port; every subscriber must get one
``Resync("backend reconnected")`` and then keep receiving.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis import asyncio as redis

from db.vocabulary import ChatStatus
from events.hub import BackendUnavailable, EventHub, SubscriptionClosed
from events.payloads import MessageAnnounced, QueueChanged, Resync, StatusChanged
from tests.harness import PostgresServer
from tests.private_redis import RedisServer, private_redis

CHAT = uuid.uuid4()
RECONNECTED = Resync("backend reconnected")
FAST: dict[str, Any] = {"probe_interval": 0.2, "timeout": 2.0, "backoff": (0.05, 0.5)}


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with private_redis() as server:
        yield server


def channel() -> str:
    return f"chat:{uuid.uuid4()}"


async def test_redis_restart_resyncs_every_subscriber(redis_server: RedisServer) -> None:
    hub = EventHub(redis_server.url, **FAST)
    await hub.connect()
    names = [channel(), channel()]
    try:
        async with contextlib.AsyncExitStack() as stack:
            subs = [
                (name, await stack.enter_async_context(hub.subscribe(name)))
                for name in names
                for _ in range(3)
            ]
            for name in names:
                await hub.publish(name, StatusChanged(CHAT, ChatStatus.RUNNING))
            for _, sub in subs:
                assert await sub.get(timeout=5) == StatusChanged(CHAT, ChatStatus.RUNNING)

            await redis_server.kill()
            # Whether or not the supervisor noticed yet, nothing pretends to work.
            assert not await hub.ping()
            with pytest.raises(BackendUnavailable):
                await hub.publish(names[0], QueueChanged(CHAT))
            with pytest.raises(BackendUnavailable):
                async with hub.subscribe(channel()):
                    pass

            await redis_server.start()
            for _, sub in subs:
                assert await sub.get(timeout=15) == RECONNECTED
            assert await hub.ping()
            for name in names:
                await hub.publish(name, MessageAnnounced(CHAT, 7))
            for _, sub in subs:
                assert await sub.get(timeout=5) == MessageAnnounced(CHAT, 7)
                assert sub.pending == 0

            client = redis.Redis.from_url(redis_server.url)
            try:
                assert dict(await client.pubsub_numsub(*names)) == {
                    name.encode(): 1 for name in names
                }
            finally:
                await client.aclose()
    finally:
        await hub.disconnect()


async def test_redis_down_for_a_while_is_retried_until_it_returns(
    redis_server: RedisServer,
) -> None:
    hub = EventHub(redis_server.url, **FAST)
    await hub.connect()
    name = channel()
    try:
        async with hub.subscribe(name) as sub:
            await redis_server.kill()
            with pytest.raises(TimeoutError):  # nothing arrives while it is down
                await sub.get(timeout=1.5)
            assert not hub.available  # the dead listener was noticed at once
            with pytest.raises(BackendUnavailable, match="is down; reconnecting"):
                await hub.publish(name, QueueChanged(CHAT))
            await redis_server.start()
            assert await sub.get(timeout=15) == RECONNECTED
            await hub.publish(name, QueueChanged(CHAT))
            assert await sub.get(timeout=5) == QueueChanged(CHAT)
    finally:
        await hub.disconnect()


async def test_a_frozen_redis_is_caught_by_the_ping(redis_server: RedisServer) -> None:
    # No EOF reaches the listener here: only the periodic PING can notice.
    hub = EventHub(redis_server.url, **FAST)
    await hub.connect()
    name = channel()
    try:
        async with hub.subscribe(name) as sub:
            redis_server.pause(True)
            try:
                with pytest.raises(TimeoutError):
                    await sub.get(timeout=4)  # > timeout + probe_interval
                assert not hub.available
                assert not await hub.ping()
            finally:
                redis_server.pause(False)
            assert await sub.get(timeout=15) == RECONNECTED
            await hub.publish(name, QueueChanged(CHAT))
            assert await sub.get(timeout=5) == QueueChanged(CHAT)
    finally:
        await hub.disconnect()


async def test_disconnecting_while_the_backend_is_down_does_not_hang(
    redis_server: RedisServer,
) -> None:
    hub = EventHub(redis_server.url, **FAST)
    await hub.connect()
    async with hub.subscribe(channel()) as sub:
        await redis_server.kill()
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.5)
        await asyncio.wait_for(hub.disconnect(), 5)
        with pytest.raises(SubscriptionClosed):
            await sub.get(timeout=1)
    assert not hub.connected
    assert not await hub.ping()


def with_application_name(dsn: str, name: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}application_name={name}"


async def test_a_terminated_postgres_listener_is_rebuilt(postgres: PostgresServer) -> None:
    tag = f"hubtest_{uuid.uuid4().hex[:12]}"
    hub = EventHub(with_application_name(postgres.admin_dsn, tag), **FAST)
    await hub.connect()
    name = channel()
    try:
        async with hub.subscribe(name) as first, hub.subscribe(name) as second:
            admin = await asyncpg.connect(postgres.admin_dsn)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = $1",
                    tag,
                )
            finally:
                await admin.close()
            assert killed == 1
            for sub in (first, second):
                assert await sub.get(timeout=15) == RECONNECTED
            await hub.publish(name, QueueChanged(CHAT))
            for sub in (first, second):
                assert await sub.get(timeout=5) == QueueChanged(CHAT)
    finally:
        await hub.disconnect()


async def test_backlog_before_a_loss_is_kept_ahead_of_the_resync(
    redis_server: RedisServer,
) -> None:
    hub = EventHub(redis_server.url, **FAST)
    await hub.connect()
    name = channel()
    try:
        async with hub.subscribe(name) as slow, hub.subscribe(name) as reader:
            for n in range(3):
                await hub.publish(name, MessageAnnounced(CHAT, n))
            for n in range(3):
                assert await reader.get(timeout=5) == MessageAnnounced(CHAT, n)
            await redis_server.kill()
            await redis_server.start()
            assert await reader.get(timeout=15) == RECONNECTED
            assert [await slow.get(timeout=1) for _ in range(4)] == [
                MessageAnnounced(CHAT, 0),
                MessageAnnounced(CHAT, 1),
                MessageAnnounced(CHAT, 2),
                RECONNECTED,
            ]
    finally:
        await hub.disconnect()
