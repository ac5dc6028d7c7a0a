"""The one place agentgql reaches into broadcaster beyond its public API.

broadcaster exports only ``Broadcast``, ``Event`` and ``BroadcastBackend``. The
hub's link also needs:
- ``MemoryBackend`` (``broadcaster._backends.memory``), the embedded mode's bus;
- ``Subscriber`` and ``Unsubscribed`` (``broadcaster._base``), what
  ``Broadcast.subscribe`` yields and what its ``get`` raises once unsubscribed;
- ``Broadcast._listener_task``, the task that moves events from the backend to
  the subscribers: it ends only when the backend failed, which is how the hub's
  supervisor notices a dead connection;
- ``Broadcast._subscribers``, broadcaster's own queues per channel, read only to
  check it let go of a channel.

The Redis and Postgres backends are agentgql's own (``redis_pubsub``,
``postgres_notify``) on the public ``BroadcastBackend``: upstream's are replaced,
not subclassed.

Checked against broadcaster 0.3.1 (the pin in ``pyproject.toml``).
``tests/events/test_broadcaster_compat.py`` fails if an upgrade moves or
reshapes any of it, and ``tests/test_private_apis.py`` fails if any other module
uses it.
"""

from __future__ import annotations

import asyncio

from broadcaster import Broadcast
from broadcaster._backends.memory import MemoryBackend
from broadcaster._base import Subscriber, Unsubscribed

CHECKED_AGAINST = "0.3.1"
"""The broadcaster version this surface was last checked against."""

LISTENER_TASK = "_listener_task"
"""The ``Broadcast`` attribute holding its listener task (set by ``connect``)."""

SUBSCRIBERS = "_subscribers"
"""The ``Broadcast`` attribute mapping each channel to its subscribers' queues."""

PRIVATE_NAMES = frozenset({LISTENER_TASK, SUBSCRIBERS})
"""Every private broadcaster attribute agentgql uses, all of them here."""

__all__ = [
    "CHECKED_AGAINST",
    "LISTENER_TASK",
    "PRIVATE_NAMES",
    "SUBSCRIBERS",
    "MemoryBackend",
    "Subscriber",
    "Unsubscribed",
    "listener_task",
    "subscribed_channels",
]


def listener_task(broadcast: Broadcast) -> asyncio.Task[None]:
    """The task feeding ``broadcast``'s subscribers (raises before ``connect``)."""
    task: asyncio.Task[None] = getattr(broadcast, LISTENER_TASK)
    return task


def subscribed_channels(broadcast: Broadcast) -> set[str]:
    """The channels ``broadcast`` still holds subscriber queues for."""
    queues: dict[str, object] = getattr(broadcast, SUBSCRIBERS)
    return set(queues)
