"""One generation of the hub's connection to its broadcast backend.

A link is a broadcaster ``Broadcast`` over one backend object, plus the hub's
single upstream subscription per channel and a pump task per channel that hands
each message to the hub. Links are not repaired: when one breaks, the hub's
supervisor abandons it and builds a new one, because neither broadcaster nor its
backends can resume after a lost connection.

broadcaster traps handled here rather than upstream:

* ``Broadcast.subscribe`` turns a failing backend SUBSCRIBE into a ``KeyError``
  (its cleanup removes a queue it never registered); the real error is its
  ``__context__`` and is re-raised (including a ``CancelledError``).
* ``Broadcast.disconnect`` re-raises a dead listener's error and then skips the
  backend's own disconnect; ``close`` stops the listener and the backend itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from broadcaster import Broadcast, BroadcastBackend

from events.broadcaster_compat import MemoryBackend, Subscriber, Unsubscribed, listener_task
from events.postgres_notify import PostgresNotify
from events.redis_pubsub import RedisPubSub

log = logging.getLogger(__name__)

Deliver = Callable[[str, str], None]


@runtime_checkable
class Supervised(Protocol):
    """A backend that can be probed and told to give up (ours: Redis, Postgres)."""

    async def probe(self) -> None: ...

    def abandon(self, reason: str) -> None: ...


def describe(error: BaseException | None) -> str:
    """One line for logs and error messages (redis-py's repr hides the message)."""
    if error is None:
        return "cancelled"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def make_backend(url: str, timeout: float) -> BroadcastBackend:
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss"}:
        return RedisPubSub(url, timeout=timeout)
    if scheme in {"postgres", "postgresql"}:
        return PostgresNotify(url, timeout=timeout)
    if scheme == "memory":
        return MemoryBackend(url)
    raise ValueError(f"unsupported broadcast URL scheme {scheme!r}: use memory, redis or postgres")


class BroadcastLink:
    def __init__(self, url: str, deliver: Deliver, *, timeout: float) -> None:
        self.backend = make_backend(url, timeout)
        self.broadcast = Broadcast(backend=self.backend)
        self._deliver = deliver
        self._timeout = timeout
        self._upstream: dict[str, tuple[AsyncExitStack, asyncio.Task[None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._abandoned = False

    @property
    def listener(self) -> asyncio.Task[None]:
        """broadcaster's listener task: it ends only when the backend failed."""
        if self._listener is None:
            raise RuntimeError("link not connected")
        return self._listener

    @property
    def channels(self) -> set[str]:
        return set(self._upstream)

    async def connect(self) -> None:
        """Connect and prove the backend answers; on failure nothing is left open."""
        try:
            await self.broadcast.connect()
            self._listener = listener_task(self.broadcast)
            await self.probe()
        except BaseException:
            await self.close()
            raise

    async def add(self, channel: str) -> None:
        """Open the one upstream subscription for ``channel`` and start its pump."""
        if channel in self._upstream:
            return
        stack = AsyncExitStack()
        try:
            subscriber = await stack.enter_async_context(self.broadcast.subscribe(channel))
        except BaseException as exc:
            cause = exc.__context__ if isinstance(exc, KeyError) and exc.__context__ else exc
            # A failed or cancelled SUBSCRIBE may still have reached the server; the
            # caller holds the hub's lock, so this cannot undo a newer subscription.
            await self._unsubscribe_quietly(channel)
            if cause is exc:
                raise
            raise cause from None
        pump = asyncio.create_task(self._pump(channel, subscriber), name=f"hub-pump:{channel}")
        self._upstream[channel] = (stack, pump)

    async def remove(self, channel: str) -> None:
        """Drop the upstream subscription (broadcaster unsubscribes the backend)."""
        entry = self._upstream.pop(channel, None)
        if entry is None:
            return
        stack, pump = entry
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await stack.aclose()

    async def publish(self, channel: str, message: str) -> None:
        await self.broadcast.publish(channel=channel, message=message)

    async def probe(self) -> None:
        """Raise if the listener died or the backend does not answer."""
        listener = self.listener
        if listener.done():
            error = None if listener.cancelled() else listener.exception()
            raise ConnectionError(f"broadcast listener stopped ({describe(error)})")
        if isinstance(self.backend, Supervised):
            await self.backend.probe()

    def abandon(self, reason: str) -> None:
        """Stop delivering now; later backend calls fail fast instead of waiting."""
        self._abandoned = True
        if isinstance(self.backend, Supervised):
            self.backend.abandon(reason)
        for _, pump in self._upstream.values():
            pump.cancel()

    async def close(self) -> None:
        """Release everything, best effort: the backend may already be gone."""
        self.abandon("closed")
        for channel in list(self._upstream):
            try:
                async with asyncio.timeout(self._timeout):
                    await self.remove(channel)
            except Exception:
                log.debug("dropping %s on a closing link failed", channel, exc_info=True)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        try:
            async with asyncio.timeout(self._timeout):
                await self.backend.disconnect()
        except Exception:
            log.debug("disconnecting the broadcast backend failed", exc_info=True)

    async def _unsubscribe_quietly(self, channel: str) -> None:
        if self._abandoned:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._timeout):
                await self.backend.unsubscribe(channel)

    async def _pump(self, channel: str, subscriber: Subscriber) -> None:
        while True:
            try:
                event = await subscriber.get()
            except Unsubscribed:
                return
            self._deliver(channel, event.message)
