"""A broadcaster Redis backend without the lost-wakeup race of broadcaster 0.3.1.

Upstream sets its "ready" event *before* the SUBSCRIBE is sent; the listener can
then call ``listen()`` with no channel, return at once and clear the event, after
which it sleeps forever and every subscriber hangs (seen with redis-py 8). Here
the event is set after subscribing, and the listener re-checks the subscription
before sleeping.
"""

from __future__ import annotations

from broadcaster._backends.redis import RedisBackend
from broadcaster._base import Event


class RedisPubSub(RedisBackend):
    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)
        self._ready.set()

    async def _pubsub_listener(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                self._ready.clear()
                if not self._pubsub.subscribed:
                    await self._ready.wait()
                continue
            async for message in self._pubsub.listen():
                if message["type"] == "message":
                    await self._queue.put(
                        Event(channel=message["channel"].decode(), message=message["data"].decode())
                    )
