"""The event hub publishes JSON strings on every backend, small enough for NOTIFY."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from redis.exceptions import ConnectionError

from db.event_hub import EventHub, PayloadTooLarge
from tests.harness import IN_CI, REDIS_URL, reachable


def _redis_or_skip() -> str:
    if reachable("127.0.0.1", 6379):
        return REDIS_URL
    if IN_CI:
        pytest.fail("CI=true but no Redis on 127.0.0.1:6379")
    pytest.skip("no Redis on 127.0.0.1:6379")


async def _round_trip(hub: EventHub) -> object:
    broadcast = hub._broadcast
    async with broadcast.subscribe("chat:1") as subscriber:
        await hub.publish("chat:1", {"kind": "status", "status": "running"})
        event = await asyncio.wait_for(subscriber.get(), timeout=5)
    return event.message


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_published_events_arrive_as_json_strings(backend: str) -> None:
    hub = EventHub("memory://" if backend == "memory" else _redis_or_skip())
    await hub.connect()
    try:
        assert await hub.ping()
        message = await _round_trip(hub)
    finally:
        await hub.disconnect()
    assert isinstance(message, str)
    assert orjson.loads(message) == {"kind": "status", "status": "running"}
    assert not await hub.ping()


async def test_payloads_stay_under_the_notify_limit() -> None:
    hub = EventHub("memory://")
    await hub.connect()
    try:
        with pytest.raises(PayloadTooLarge):
            await hub.publish("chat:1", {"text": "x" * 8000})
    finally:
        await hub.disconnect()


async def test_unreachable_redis_fails_at_connect() -> None:
    hub = EventHub("redis://127.0.0.1:1")
    with pytest.raises(ConnectionError):
        await hub.connect()
