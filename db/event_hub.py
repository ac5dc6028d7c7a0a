"""The event hub: publishing small JSON events on named channels over broadcaster.

Payloads are JSON strings of ids and small deltas (< 8000 bytes, so a Postgres
NOTIFY backend works too); receivers hydrate rows from the database. ``memory://``
is used in one process, ``redis://`` across replicas.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import orjson
from broadcaster import Broadcast

from db.redis_pubsub import RedisPubSub

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 8000


class PayloadTooLarge(ValueError):
    pass


class EventHub:
    def __init__(self, url: str) -> None:
        self.url = url
        if urlsplit(url).scheme in {"redis", "rediss"}:
            self._broadcast = Broadcast(backend=RedisPubSub(url))
        else:
            self._broadcast = Broadcast(url)
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        await self._broadcast.connect()
        self._connected = True

    async def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            await self._broadcast.disconnect()

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        payload = orjson.dumps(event)
        if len(payload) >= MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"{channel}: {len(payload)} bytes")
        # Always a str, so memory:// behaves like the networked backends.
        await self._broadcast.publish(channel=channel, message=payload.decode())

    async def ping(self) -> bool:
        """Whether the backend answers; memory:// always does once connected."""
        if not self._connected:
            return False
        backend: Any = getattr(self._broadcast, "_backend", None)
        conn: Any = getattr(backend, "_conn", None)
        if conn is not None and hasattr(conn, "ping"):
            try:
                await conn.ping()
            except Exception:
                log.warning("broadcast backend unreachable", exc_info=True)
                return False
        return True
