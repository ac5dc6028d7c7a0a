"""broadcaster's private surface the hub's link builds on is where it expects it.

``events.broadcaster_compat`` imports the memory backend and the subscriber types
from broadcaster's private modules and reads ``Broadcast``'s listener task and
subscriber queues. If an upgrade moves or reshapes any of it, these fail, naming
the installed version: the embedded mode would not start, or a dead backend
would leave every subscription hanging instead of being rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from importlib.metadata import version

import pytest
from broadcaster import Broadcast, BroadcastBackend, Event

from events.broadcaster_compat import (
    CHECKED_AGAINST,
    LISTENER_TASK,
    SUBSCRIBERS,
    MemoryBackend,
    Subscriber,
    Unsubscribed,
    listener_task,
    subscribed_channels,
)
from events.postgres_notify import PostgresNotify
from events.redis_pubsub import RedisPubSub


def changed(what: str) -> str:
    return (
        f"broadcaster {version('broadcaster')} changed {what} (checked against "
        f"{CHECKED_AGAINST}): revisit events/broadcaster_compat.py"
    )


class DeadBackend(MemoryBackend):
    """A memory backend whose connection is gone: reading from it fails."""

    async def next_published(self) -> Event:
        raise ConnectionError("backend gone")


def test_the_private_imports_are_the_types_the_link_expects() -> None:
    assert issubclass(MemoryBackend, BroadcastBackend), changed("MemoryBackend's base")
    assert issubclass(Unsubscribed, Exception), changed("Unsubscribed")
    assert inspect.iscoroutinefunction(Subscriber.get), changed("Subscriber.get")


async def test_a_memory_round_trip_through_the_listener_task() -> None:
    broadcast = Broadcast(backend=MemoryBackend("memory://"))
    await broadcast.connect()
    assert hasattr(broadcast, LISTENER_TASK), changed(f"Broadcast.{LISTENER_TASK} (gone)")
    task = listener_task(broadcast)
    assert isinstance(task, asyncio.Task), changed(f"{LISTENER_TASK} (now {type(task)})")
    assert not task.done()
    try:
        assert hasattr(broadcast, SUBSCRIBERS), changed(f"Broadcast.{SUBSCRIBERS} (gone)")
        async with broadcast.subscribe("compat") as subscriber:
            assert isinstance(subscriber, Subscriber), changed("what subscribe yields")
            assert subscribed_channels(broadcast) == {"compat"}, changed(SUBSCRIBERS)
            await broadcast.publish(channel="compat", message='{"n": 1}')
            event = await asyncio.wait_for(subscriber.get(), timeout=5)
            assert event == Event(channel="compat", message='{"n": 1}')
        assert subscribed_channels(broadcast) == set(), changed(f"{SUBSCRIBERS} on leaving")
        with pytest.raises(Unsubscribed):
            await asyncio.wait_for(subscriber.get(), timeout=5)
    finally:
        await broadcast.disconnect()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert task.cancelled(), changed(f"{LISTENER_TASK} on disconnect (still running)")


async def test_the_listener_task_ends_with_the_backends_failure() -> None:
    """The hub's supervisor notices a dead connection by this task ending."""
    broadcast = Broadcast(backend=DeadBackend("memory://"))
    await broadcast.connect()
    with pytest.raises(ConnectionError, match="backend gone"):
        await asyncio.wait_for(listener_task(broadcast), timeout=5)


@pytest.mark.parametrize("backend", [RedisPubSub, PostgresNotify])
def test_our_backends_implement_every_method_broadcast_calls(backend: type) -> None:
    """They build on the public base alone: one it gains must be implemented here."""
    required = {
        name
        for name, member in vars(BroadcastBackend).items()
        if inspect.isfunction(member) and name != "__init__"
    }
    missing = {name for name in required if name not in vars(backend)}
    assert required, changed("BroadcastBackend (no methods left)")
    assert missing == set(), changed(f"BroadcastBackend (new methods {missing})")
