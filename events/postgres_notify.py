"""A broadcaster Postgres (LISTEN/NOTIFY) backend that is safe to share and fails loudly.

broadcaster 0.3.1's ``PostgresBackend`` runs LISTEN, UNLISTEN and every NOTIFY on
one asyncpg connection without any coordination, and asyncpg refuses a second
operation while one is in flight ("another operation is in progress"): two
concurrent publishes, or a publish during a subscribe, fail. Here every
statement on that connection goes through one lock.

When the connection is terminated (server restart, ``pg_terminate_backend``,
network loss) upstream's ``next_published`` keeps waiting on its queue forever;
here asyncpg's termination callback records the failure and ``next_published``
raises, so broadcaster's listener task ends and the hub's supervisor sees it.
NOTIFY payloads must stay under 8000 bytes; the hub checks that before sending.

Upstream's backend is replaced rather than subclassed: its methods work on its
private attributes (the connection, the queue its callback fills), which an
upgrade could rename without a trace. This builds on the public
``BroadcastBackend`` alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from broadcaster import BroadcastBackend, Event

log = logging.getLogger(__name__)

_LOST = Event(channel="", message="")


class PostgresNotify(BroadcastBackend):
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._listen_queue: asyncio.Queue[Event] = asyncio.Queue()
        self.failure: BaseException | None = None

    async def connect(self) -> None:
        self._conn: asyncpg.Connection = await asyncpg.connect(self._url, timeout=self._timeout)
        self._conn.add_termination_listener(self._terminated)

    async def disconnect(self) -> None:
        self.abandon("disconnected")
        conn = getattr(self, "_conn", None)
        if conn is None or conn.is_closed():
            return
        try:
            await conn.close(timeout=self._timeout)
        except Exception:
            log.debug("closing the LISTEN connection failed; terminating it", exc_info=True)
            conn.terminate()

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            self._raise_if_lost()
            await self._conn.add_listener(channel, self._notified)

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            if self.failure is None:  # a lost connection has nothing left to unlisten
                await self._conn.remove_listener(channel, self._notified)

    async def publish(self, channel: str, message: str) -> None:
        async with self._lock:
            self._raise_if_lost()
            await self._conn.execute("SELECT pg_notify($1, $2)", channel, message)

    async def next_published(self) -> Event:
        event = await self._listen_queue.get()
        if event is _LOST:
            self._listen_queue.put_nowait(_LOST)  # every later call fails the same way
            self._raise_if_lost()
        return event

    async def probe(self) -> None:
        """Raise unless the LISTEN connection is open and answers a query."""
        self._raise_if_lost()
        async with self._lock:
            if self._conn.is_closed():
                raise ConnectionError("postgres LISTEN connection is closed")
            await self._conn.fetchval("SELECT 1")

    def abandon(self, reason: str) -> None:
        """Give up on this connection: later calls fail with ``reason``."""
        if self.failure is None:
            self.failure = ConnectionError(reason)
            self._listen_queue.put_nowait(_LOST)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._listen_queue.put_nowait(Event(channel=channel, message=payload))

    def _terminated(self, connection: Any) -> None:
        if self.failure is None:
            log.warning("postgres LISTEN connection closed")
        self.abandon("postgres LISTEN connection closed")

    def _raise_if_lost(self) -> None:
        if self.failure is not None:
            raise ConnectionError(f"postgres notify lost: {self.failure}") from self.failure
