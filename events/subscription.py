"""One local subscriber's view of a channel: a bounded queue with resync signals.

broadcaster's own per-subscriber queues are unbounded, so a stalled client would
grow memory without limit. Here each subscriber holds at most ``max_queue``
events; when it falls that far behind, its backlog is dropped and replaced by a
single ``Resync("overflow")``: the client re-reads from its cursor instead. The
hub uses the same signal after it rebuilt a lost backend connection
(``Resync("backend reconnected")``), since events may have been missed while it
was down.

Delivered events are one object shared by every local subscriber of the channel
(``events.sharing``): treat them as read-only. Resyncs are made per subscriber.

A consumer may also take events directly (``direct``): while it is parked in
``get`` with nothing queued and nothing held, ``offer`` hands the event to that
callback instead of queueing it and waking the consumer's task. A live stream
uses it to write an event's frame to its socket at once, without running its
own generator for it. Order is kept: an event is only taken directly when
everything before it has been handled, and a delivery that has to finish later
``hold``s the subscription, so the consumer reads nothing queued meanwhile
until it is ``release``d.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from events.payloads import Event, Resync

log = logging.getLogger(__name__)

OVERFLOW = "overflow"
RECONNECTED = "backend reconnected"


class SubscriptionClosed(Exception):
    """The subscription ended (left its context, or the hub disconnected)."""


class Subscription:
    """Events of one channel for one consumer, in publish order.

    ``get`` is meant for a single consumer task; ``offer`` and ``resync`` are
    called by the hub and never block, so one slow consumer cannot hold up the
    fan-out to the others.
    """

    def __init__(self, channel: str, max_queue: int) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.channel = channel
        self.max_queue = max_queue
        self.dropped = 0
        """Events discarded by overflows so far (for metrics)."""
        self._items: deque[Event] = deque()
        self._resync_at_tail = False
        self._wakeup = asyncio.Event()
        self._closed = False
        self.direct: Callable[[Event], bool] | None = None
        """Takes an event instead of the queue (True: handled); see the module doc."""
        self._parked = False  # the consumer waits in ``get`` for the next event
        self._held = 0

    def __repr__(self) -> str:
        return f"Subscription({self.channel!r}, pending={len(self._items)})"

    @property
    def pending(self) -> int:
        """Events waiting to be read; never more than ``max_queue``."""
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, event: Event) -> None:
        """Queue one event, or collapse the backlog into one resync when full."""
        if self._closed:
            return
        if self._parked and self.direct is not None and not self._items and not self._held:
            try:
                if self.direct(event):
                    return
            except Exception:  # one subscriber's failure must not stop the fan-out
                log.exception("direct delivery on %s failed; queueing the event", self.channel)
        if len(self._items) >= self.max_queue:
            self._overflow()
            return
        self._items.append(event)
        self._resync_at_tail = False
        self._wakeup.set()

    def resync(self, reason: str) -> None:
        """Ask the consumer to re-read from its cursor; one pending resync is enough."""
        if self._closed or self._resync_at_tail:
            return
        if len(self._items) >= self.max_queue:
            self._overflow()
            return
        self._push_resync(reason)

    def hold(self) -> None:
        """A direct delivery is still being written: ``get`` returns nothing until
        the matching ``release``, and nothing else is taken directly meanwhile."""
        self._held += 1

    def release(self) -> None:
        self._held -= 1
        if not self._held:
            self._wakeup.set()

    @property
    def held(self) -> bool:
        return self._held > 0

    def close(self) -> None:
        """End the subscription: queued events are still readable, then ``get`` raises."""
        self._closed = True
        self._wakeup.set()

    async def get(self, timeout: float | None = None) -> Event:  # noqa: ASYNC109 (the API)
        """The next event; ``TimeoutError`` after ``timeout`` seconds without one."""
        if not self._items or self._held:
            if timeout is None:  # the live streams' case: no timer to arm per event
                await self._wait()
            else:
                async with asyncio.timeout(timeout):
                    await self._wait()
        item = self._items.popleft()
        if not self._items:
            self._resync_at_tail = False
        return item

    async def _wait(self) -> None:
        while not self._items or self._held:
            if self._closed and not self._items:
                raise SubscriptionClosed(self.channel)
            self._wakeup.clear()
            self._parked = True
            try:
                await self._wakeup.wait()
            finally:
                self._parked = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def _overflow(self) -> None:
        # The event that did not fit is dropped too: the re-read covers it.
        self.dropped += 1 + sum(not isinstance(item, Resync) for item in self._items)
        self._items.clear()
        self._push_resync(OVERFLOW)

    def _push_resync(self, reason: str) -> None:
        self._items.append(Resync(reason))
        self._resync_at_tail = True
        self._wakeup.set()
