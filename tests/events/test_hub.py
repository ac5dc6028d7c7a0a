"""The event hub's basic contract on every backend: JSON strings on the wire,
typed events to subscribers, small payloads, clear errors when not connected."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from redis.exceptions import ConnectionError

from db.vocabulary import ChatStatus
from events.hub import BackendUnavailable, EventHub, PayloadTooLarge, SubscriptionClosed
from events.payloads import (
    Event,
    HistoryReset,
    MessageAnnounced,
    PartDelta,
    QueueChanged,
    StatusChanged,
)
from tests.harness import PostgresServer, redis_or_skip

BACKENDS = ["memory", "redis", "postgres"]
CHAT = uuid.uuid4()


def hub_url(backend: str, postgres: PostgresServer) -> str:
    if backend == "redis":
        return redis_or_skip()
    if backend == "postgres":
        return postgres.admin_dsn
    return "memory://"


def channel() -> str:
    """A fresh channel: the Redis and Postgres servers are shared with other test runs."""
    return f"chat:{uuid.uuid4()}"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_published_events_arrive_as_json_strings(
    backend: str, postgres: PostgresServer
) -> None:
    hub = EventHub(hub_url(backend, postgres))
    await hub.connect()
    name = channel()
    try:
        assert await hub.ping()
        assert hub._link is not None
        async with hub._link.broadcast.subscribe(name) as raw:
            await hub.publish(name, StatusChanged(CHAT, ChatStatus.RUNNING))
            event = await asyncio.wait_for(raw.get(), timeout=5)
    finally:
        await hub.disconnect()
    assert isinstance(event.message, str)  # memory:// must not hide a non-str payload
    wire = {"kind": "status", "chatId": str(CHAT), "status": "running"}
    assert orjson.loads(event.message) == wire
    assert not await hub.ping()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_subscribers_get_decoded_events_in_order(
    backend: str, postgres: PostgresServer
) -> None:
    hub = EventHub(hub_url(backend, postgres))
    await hub.connect()
    name = channel()
    try:
        async with hub.subscribe(name) as sub:
            for n in range(20):
                await hub.publish(name, MessageAnnounced(CHAT, n))
            got = [await sub.get(timeout=5) for _ in range(20)]
            assert got == [MessageAnnounced(CHAT, n) for n in range(20)]
            with pytest.raises(TimeoutError):
                await sub.get(timeout=0.05)
    finally:
        await hub.disconnect()


async def test_async_iteration_ends_when_the_hub_disconnects() -> None:
    hub = EventHub("memory://")
    await hub.connect()
    name = channel()
    seen: list[Event] = []
    both = asyncio.Event()
    async with hub.subscribe(name) as sub:

        async def consume() -> None:
            async for event in sub:
                seen.append(event)
                if len(seen) == 2:
                    both.set()

        consumer = asyncio.create_task(consume())
        await hub.publish(name, QueueChanged(CHAT))
        await hub.publish(name, HistoryReset(CHAT))
        await asyncio.wait_for(both.wait(), timeout=5)
        await hub.disconnect()
        await asyncio.wait_for(consumer, timeout=5)
        with pytest.raises(SubscriptionClosed):
            await sub.get(timeout=1)
    assert seen == [QueueChanged(CHAT), HistoryReset(CHAT)]


async def test_payloads_stay_under_the_notify_limit() -> None:
    hub = EventHub("memory://")
    await hub.connect()
    try:
        with pytest.raises(PayloadTooLarge):
            await hub.publish("chat:1", PartDelta(CHAT, 0, {"type": "text", "text": "x" * 8000}))
    finally:
        await hub.disconnect()


async def test_unreachable_redis_fails_at_connect() -> None:
    hub = EventHub("redis://127.0.0.1:1")
    with pytest.raises(ConnectionError):
        await hub.connect()
    assert not hub.connected
    assert not await hub.ping()


async def test_using_a_hub_that_is_not_connected_is_a_clear_error() -> None:
    hub = EventHub("memory://")
    with pytest.raises(BackendUnavailable, match="not connected"):
        await hub.publish("chat:1", QueueChanged(CHAT))
    with pytest.raises(BackendUnavailable, match="not connected"):
        async with hub.subscribe("chat:1"):
            pass
    assert not await hub.ping()


async def test_unsupported_backends_are_refused() -> None:
    hub = EventHub("kafka://127.0.0.1:9092")
    with pytest.raises(ValueError, match="unsupported broadcast URL scheme"):
        await hub.connect()
