"""A broadcaster Redis backend that fails loudly instead of hanging.

broadcaster 0.3.1's ``RedisBackend`` has three ways to leave subscribers waiting
forever, all fixed here:

* Lost wakeup: upstream sets its "ready" event *before* the SUBSCRIBE is sent;
  the listener can then call ``listen()`` with no channel, return at once and
  clear the event, after which it sleeps forever (seen with redis-py 8). Here the
  event is set after subscribing, and the listener re-checks before sleeping.
* Dead listener: when the connection drops, the listener task dies with the
  error while ``next_published`` keeps waiting on its queue. Here the failure is
  recorded and ``next_published`` raises, so broadcaster's listener task ends and
  the hub's supervisor sees it.
* Silent reconnect: redis-py retries a broken read by reconnecting and
  re-subscribing, losing whatever was published meanwhile without a trace.
  Retries are off, so every loss surfaces and subscribers get a resync.

``subscribe`` also waits for the server's confirmation, so an event published
right after it returns cannot overtake the SUBSCRIBE. ``probe`` PINGs on a
dedicated connection (the pub/sub one cannot answer commands while listening).

Every method of upstream's backend is replaced, so this builds on the public
``BroadcastBackend`` alone rather than on upstream's private class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from broadcaster import BroadcastBackend, Event
from redis import asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

_LOST = Event(channel="", message="")


# Commands (publishes, live-step reads) share this many connections per process.
# redis-py's default pool refuses the 101st concurrent command outright ("Too many
# connections", a ConnectionError that reads as "Redis is down"): 500 clients
# subscribing at once were refused. A blocking pool makes the excess wait instead.
POOL_CONNECTIONS = 32


def pooled_client(url: str, *, timeout: float, **options: Any) -> redis.Redis:
    """A client whose commands wait (up to ``timeout``) for one of a bounded
    number of connections, rather than failing when all are busy."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_CONNECTIONS, timeout=timeout, **options
    )
    return redis.Redis(connection_pool=pool)


class RedisPubSub(BroadcastBackend):
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        # No retries: by default redis-py retries a broken read (and silently resubscribes).
        options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": timeout,
            "socket_keepalive": True,
        }
        self._conn = pooled_client(url, timeout=timeout, socket_timeout=timeout, **options)
        self._pubsub = self._conn.pubsub()
        self._prober = redis.Redis.from_url(
            url, single_connection_client=True, socket_timeout=timeout, **options
        )
        self._ready = asyncio.Event()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listener: asyncio.Task[None] | None = None
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self.failure: BaseException | None = None

    async def connect(self) -> None:
        # Connect before starting the listener, so a refused connection leaks no task.
        await self._pubsub.connect()  # type: ignore[no-untyped-call]
        self._listener = asyncio.create_task(self._pubsub_listener(), name="redis-pubsub")

    async def disconnect(self) -> None:
        self.abandon("disconnected")
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        closers: list[Callable[[], Awaitable[None]]] = [
            self._pubsub.aclose,
            self._conn.aclose,
            self._prober.aclose,
        ]
        for close in closers:
            try:
                await close()
            except Exception:
                log.debug("closing a redis connection failed", exc_info=True)

    async def subscribe(self, channel: str) -> None:
        self._raise_if_lost()
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = confirmed
        try:
            await self._pubsub.subscribe(channel)
            self._ready.set()
            await confirmed
        finally:
            if self._confirmations.get(channel) is confirmed:
                del self._confirmations[channel]

    async def unsubscribe(self, channel: str) -> None:
        if self.failure is None:  # a lost connection has nothing left to unsubscribe
            await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: Any) -> None:
        self._raise_if_lost()
        await self._conn.publish(channel, message)

    async def next_published(self) -> Event:
        event = await self._queue.get()
        if event is _LOST:
            self._queue.put_nowait(_LOST)  # every later call fails the same way
            self._raise_if_lost()
        return event

    async def probe(self) -> None:
        """Raise unless the server answers and the subscription connection is intact."""
        self._raise_if_lost()
        if self._listener is None or self._listener.done():
            raise ConnectionError("redis pub/sub listener is not running")
        connection = self._pubsub.connection
        if self._pubsub.subscribed and (connection is None or not connection.is_connected):
            raise ConnectionError("redis pub/sub connection is closed")
        await self._prober.ping()

    def abandon(self, reason: str) -> None:
        """Give up on this connection: pending and later calls fail with ``reason``."""
        self._lose(ConnectionError(reason))

    def _lose(self, error: BaseException) -> None:
        if self.failure is not None:
            return
        self.failure = error
        self._queue.put_nowait(_LOST)
        for confirmed in self._confirmations.values():
            if not confirmed.done():
                confirmed.set_exception(ConnectionError(f"redis pub/sub lost: {error!r}"))

    def _raise_if_lost(self) -> None:
        if self.failure is not None:
            raise ConnectionError(f"redis pub/sub lost: {self.failure}") from self.failure

    async def _pubsub_listener(self) -> None:
        try:
            await self._listen()
        except Exception as exc:
            log.warning("redis pub/sub listener stopped: %s: %s", type(exc).__name__, exc)
            self._lose(exc)

    async def _listen(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                self._ready.clear()
                if not self._pubsub.subscribed:
                    await self._ready.wait()
                continue
            async for message in self._pubsub.listen():
                kind = message["type"]
                if kind == "message":
                    event = Event(
                        channel=message["channel"].decode(), message=message["data"].decode()
                    )
                    await self._queue.put(event)
                elif kind == "subscribe":
                    confirmed = self._confirmations.get(message["channel"].decode())
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
