"""Fan-out through one upstream subscription per channel, and bounded queues.

Real backends only: Redis on 127.0.0.1:6379 (required in CI), the test
PostgreSQL, and memory://. Channels are fresh uuids because those servers are
shared with other test runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import asyncio as redis

from events.broadcaster_compat import subscribed_channels
from events.hub import EventHub, Subscription
from events.payloads import Event, MessageAnnounced, QueueChanged, Resync
from tests.harness import PostgresServer, redis_or_skip

BACKENDS = ["memory", "redis", "postgres"]
CHAT = uuid.uuid4()
RESYNC_OVERFLOW = Resync("overflow")


def channel() -> str:
    return f"chat:{uuid.uuid4()}"


@contextlib.asynccontextmanager
async def connected(url: str, **options: Any) -> AsyncIterator[EventHub]:
    hub = EventHub(url, **options)
    await hub.connect()
    try:
        yield hub
    finally:
        await hub.disconnect()


@pytest.fixture
def url(request: pytest.FixtureRequest, postgres: PostgresServer) -> str:
    backend: str = request.param
    if backend == "redis":
        return redis_or_skip()
    if backend == "postgres":
        return postgres.admin_dsn
    return "memory://"


async def redis_subscribers(name: str) -> int:
    """How many connections Redis itself has subscribed to ``name``."""
    client = redis.Redis.from_url(redis_or_skip())
    try:
        counts = await client.pubsub_numsub(name)
    finally:
        await client.aclose()
    return int(counts[0][1])


async def drain(sub: Subscription) -> list[Event]:
    return [await sub.get(timeout=1) for _ in range(sub.pending)]


@pytest.mark.parametrize("url", BACKENDS, indirect=True)
async def test_every_local_subscriber_gets_every_event(url: str) -> None:
    name, other = channel(), channel()
    async with connected(url) as hub, contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(hub.subscribe(name)) for _ in range(25)]
        bystander = await stack.enter_async_context(hub.subscribe(other))
        assert hub.channels == {name: 25, other: 1}
        for n in range(10):
            await hub.publish(name, MessageAnnounced(CHAT, n))
        expected = [MessageAnnounced(CHAT, n) for n in range(10)]
        for sub in subs:
            assert [await sub.get(timeout=5) for _ in range(10)] == expected
        assert bystander.pending == 0
        if url.startswith("redis"):
            assert await redis_subscribers(name) == 1  # one upstream subscription


@pytest.mark.parametrize("url", BACKENDS, indirect=True)
async def test_concurrent_first_subscribers_all_receive(url: str) -> None:
    # Straight on broadcaster this race orphans a queue and ends in a KeyError.
    name = channel()
    async with connected(url) as hub, contextlib.AsyncExitStack() as stack:
        subs = await asyncio.gather(
            *(stack.enter_async_context(hub.subscribe(name)) for _ in range(10))
        )
        await hub.publish(name, QueueChanged(CHAT))
        for sub in subs:
            assert await sub.get(timeout=5) == QueueChanged(CHAT)
        if url.startswith("redis"):
            assert await redis_subscribers(name) == 1


@pytest.mark.parametrize("url", BACKENDS, indirect=True)
async def test_the_last_subscriber_leaving_drops_the_upstream_subscription(url: str) -> None:
    name = channel()
    async with connected(url) as hub:
        assert hub._link is not None
        async with hub.subscribe(name) as first:
            async with hub.subscribe(name):
                assert hub._link.channels == {name}
            assert hub.channels == {name: 1}  # one left: the upstream stays
            await hub.publish(name, QueueChanged(CHAT))
            assert await first.get(timeout=5) == QueueChanged(CHAT)
        assert hub.channels == {}
        assert hub._link.channels == set()
        assert subscribed_channels(hub._link.broadcast) == set()
        if url.startswith("redis"):
            assert await redis_subscribers(name) == 0
        async with hub.subscribe(name) as again:  # and it can be opened again
            await hub.publish(name, QueueChanged(CHAT))
            assert await again.get(timeout=5) == QueueChanged(CHAT)


async def test_a_cancelled_subscriber_still_releases_the_upstream() -> None:
    url = redis_or_skip()
    name = channel()
    entered = asyncio.Event()
    async with connected(url) as hub:

        async def subscriber() -> None:
            async with hub.subscribe(name):
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(subscriber())
        await asyncio.wait_for(entered.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert hub.channels == {}
        assert await redis_subscribers(name) == 0


@pytest.mark.parametrize("url", BACKENDS, indirect=True)
async def test_a_stalled_subscriber_is_bounded_and_told_to_resync(url: str) -> None:
    name = channel()
    async with (
        connected(url, queue_size=10) as hub,
        hub.subscribe(name) as stalled,
        hub.subscribe(name, max_queue=2000) as reader,
    ):
        for batch in range(20):
            for n in range(batch * 50, batch * 50 + 50):
                await hub.publish(name, MessageAnnounced(CHAT, n))
            # The reader has all of them, so the stalled one was offered all of them too.
            for n in range(batch * 50, batch * 50 + 50):
                assert await reader.get(timeout=5) == MessageAnnounced(CHAT, n)
            assert stalled.pending <= 10
        assert stalled.dropped >= 990

        backlog = await drain(stalled)
        assert backlog[0] == RESYNC_OVERFLOW
        assert backlog.count(RESYNC_OVERFLOW) == 1
        assert backlog[1:] == [MessageAnnounced(CHAT, n) for n in range(1001 - len(backlog), 1000)]

        await hub.publish(name, MessageAnnounced(CHAT, 1000))
        assert await stalled.get(timeout=5) == MessageAnnounced(CHAT, 1000)
        assert await reader.get(timeout=5) == MessageAnnounced(CHAT, 1000)


async def test_overflow_again_before_reading_keeps_a_single_resync() -> None:
    name = channel()
    async with connected("memory://", queue_size=3) as hub, hub.subscribe(name) as sub:
        async with hub.subscribe(name, max_queue=100) as reader:
            for n in range(4):  # overflow: [resync]
                await hub.publish(name, MessageAnnounced(CHAT, n))
            for n in range(4, 7):  # [resync, 4, 5] full, then 6 overflows again: [resync]
                await hub.publish(name, MessageAnnounced(CHAT, n))
            await hub.publish(name, MessageAnnounced(CHAT, 7))
            for n in range(8):
                assert await reader.get(timeout=5) == MessageAnnounced(CHAT, n)
        assert await drain(sub) == [RESYNC_OVERFLOW, MessageAnnounced(CHAT, 7)]


async def test_postgres_publishes_may_run_concurrently(postgres: PostgresServer) -> None:
    # broadcaster's Postgres backend shares one asyncpg connection for LISTEN and
    # NOTIFY: unserialized, these fail with "another operation is in progress".
    name = channel()
    async with connected(postgres.admin_dsn) as hub, hub.subscribe(name) as sub:
        await asyncio.gather(*(hub.publish(name, MessageAnnounced(CHAT, n)) for n in range(100)))
        got = [await sub.get(timeout=5) for _ in range(100)]
        announced = [e.message_id for e in got if isinstance(e, MessageAnnounced)]
        assert sorted(announced) == list(range(100))
        async with contextlib.AsyncExitStack() as stack:
            more = channel()
            subscribing = [stack.enter_async_context(hub.subscribe(more)) for _ in range(5)]
            publishing = [hub.publish(name, MessageAnnounced(CHAT, n)) for n in range(100, 120)]
            await asyncio.gather(*subscribing, *publishing)
        assert len([await sub.get(timeout=5) for _ in range(20)]) == 20
