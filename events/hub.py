"""The event hub: typed events on named channels, over broadcaster.

Publishers hand it typed events (``events.payloads``); on the wire they are JSON
strings of ids and small deltas (< 8000 bytes, so a Postgres NOTIFY backend
works too; ``events.wire``); receivers hydrate rows from the database.
``memory://`` serves one process, ``redis://`` (or ``postgres://``) replicas.

broadcaster alone is not enough for live subscriptions (see the stack notes), so
the hub keeps ONE upstream subscription per channel per process, opened and
dropped under a lock, and fans each event out to bounded local queues
(``Subscription``). A supervisor task watches the backend (broadcaster's
listener task, plus a periodic probe such as a Redis PING); when it is lost, it
rebuilds the connection with exponential backoff, re-subscribes every active
channel, and sends each subscriber a resync, since events may have been missed.
While the backend is down ``publish`` raises ``BackendUnavailable`` and ``ping``
is False: nothing hangs silently. A new ``subscribe`` waits a bounded while
(``outage_wait``) for the hub to reconnect, which a waiting subscriber hurries
along, and only then raises ``BackendUnavailable``: a blip costs a new stream a
moment, an outage a clear, retryable refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import urlsplit

from events import wire
from events.broadcast_link import BroadcastLink, describe
from events.payloads import Event
from events.sharing import delivered
from events.subscription import RECONNECTED, Subscription, SubscriptionClosed

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "BackendUnavailable",
    "EventHub",
    "PayloadTooLarge",
    "Subscription",
    "SubscriptionClosed",
]

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 8000


class PayloadTooLarge(ValueError):
    pass


class BackendUnavailable(ConnectionError):
    """The broadcast backend is down (the hub is reconnecting) or not connected.

    ``retry_after_s`` is when trying again is worth it (clients are told so)."""

    def __init__(self, message: str, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EventHub:
    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 1024,
        probe_interval: float = 2.0,
        timeout: float = 5.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        outage_wait: float = 5.0,
        eager_retry: float = 0.25,
    ) -> None:
        """``timeout`` bounds every backend call; ``backoff`` is (first, longest) delay
        between reconnects, shortened to ``eager_retry`` while a new subscription
        waits for the backend, at most ``outage_wait`` seconds."""
        self.url = url
        self.queue_size = queue_size
        self._probe_interval = probe_interval
        self._timeout = timeout
        self._backoff = backoff
        self._outage_wait = outage_wait
        self._eager_retry = eager_retry
        self._link: BroadcastLink | None = None
        self._channels: dict[str, set[Subscription]] = {}
        self._lock = asyncio.Lock()
        self._suspect = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._connected = False
        self._available = False
        # Set and replaced whenever the link comes or goes (waiting subscribers wake).
        self._changed = asyncio.Event()
        # Set while a new subscription waits for the backend: reconnect sooner.
        self._wanted = asyncio.Event()
        self._waiting = 0

    @property
    def connected(self) -> bool:
        """Between ``connect`` and ``disconnect``, whether or not the backend is up."""
        return self._connected

    @property
    def available(self) -> bool:
        """Connected and the backend link is up (not reconnecting)."""
        return self._connected and self._available

    @property
    def channels(self) -> dict[str, int]:
        """Local subscribers per channel; each channel has one upstream subscription."""
        return {channel: len(subs) for channel, subs in self._channels.items() if subs}

    async def connect(self) -> None:
        """Connect, failing fast (a wrong URL should stop startup, not retry forever)."""
        if self._connected:
            return
        self._lock = asyncio.Lock()  # bound to this loop, as the hub's tasks are
        self._suspect = asyncio.Event()
        self._changed = asyncio.Event()
        self._wanted = asyncio.Event()
        link = self._new_link()
        await link.connect()
        self._link = link
        self._connected = self._available = True
        self._state_changed()
        self._supervisor = asyncio.create_task(self._supervise(), name="event-hub-supervisor")

    async def disconnect(self) -> None:
        """Close every subscription (their ``get`` raises) and the backend link."""
        if not self._connected:
            return
        self._connected = self._available = False
        self._state_changed()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        async with self._lock:
            link, self._link = self._link, None
            for subs in self._channels.values():
                for sub in subs:
                    sub.close()
            self._channels.clear()
        await asyncio.gather(*self._background, return_exceptions=True)
        if link is not None:
            await link.close()

    async def publish(self, channel: str, event: Event) -> None:
        payload = wire.encode(event)
        if len(payload) >= MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"{channel}: {len(payload)} bytes")
        link = self._require_link()
        try:
            # Always a str, so memory:// behaves like the networked backends.
            async with asyncio.timeout(self._timeout):
                await link.publish(channel, payload.decode())
        except Exception as exc:
            self._suspect.set()
            raise BackendUnavailable(f"publishing on {self._where}: {describe(exc)}") from exc

    async def ping(self) -> bool:
        """Whether the backend answers now; False while down or reconnecting."""
        link = self._link
        if not self.available or link is None:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                await link.probe()
        except Exception as exc:
            log.warning("broadcast backend unreachable: %s", describe(exc))
            self._suspect.set()
            return False
        return True

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, *, max_queue: int | None = None
    ) -> AsyncIterator[Subscription]:
        """Receive what is published on ``channel`` from now on, as typed events.

        When this yields, the upstream subscription is confirmed: replay from
        the database after entering, then read live events (dropping duplicates).
        """
        sub = Subscription(channel, self.queue_size if max_queue is None else max_queue)
        await self._attach(sub)
        try:
            yield sub
        finally:
            release = self._detach(sub)
            if release is not None:  # shielded: a second cancellation cannot stop it
                await asyncio.shield(release)

    async def _attach(self, sub: Subscription) -> None:
        """Join the channel, waiting out a backend outage for ``outage_wait`` at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._outage_wait
        while True:
            try:
                await self._try_attach(sub)
                return
            except BackendUnavailable:
                if not self._connected or loop.time() >= deadline:
                    raise
            await self._wait_for_backend(deadline)

    async def _try_attach(self, sub: Subscription) -> None:
        self._require_link()
        async with self._lock:
            link = self._require_link()
            subs = self._channels.get(sub.channel)
            if subs is None:
                try:
                    async with asyncio.timeout(self._timeout):
                        await link.add(sub.channel)
                except Exception as exc:
                    self._suspect.set()
                    raise BackendUnavailable(
                        f"subscribing on {self._where}: {describe(exc)}"
                    ) from exc
                subs = self._channels[sub.channel] = set()
            subs.add(sub)

    async def _wait_for_backend(self, deadline: float) -> None:
        """Until the link comes or goes (or a short while, after a failed SUBSCRIBE
        on a link the supervisor has yet to judge), never past ``deadline``."""
        self._waiting += 1
        self._wanted.set()
        changed = self._changed
        try:
            left = deadline - asyncio.get_running_loop().time()
            pause = min(left, self._eager_retry) if self.available else left
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(pause, 0)):
                    await changed.wait()
        finally:
            self._waiting -= 1
            if not self._waiting:
                self._wanted.clear()

    def _state_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _detach(self, sub: Subscription) -> asyncio.Task[None] | None:
        """Leave at once (no await); the task drops the upstream if this was the last."""
        sub.close()
        subs = self._channels.get(sub.channel)
        if subs is None:
            return None
        subs.discard(sub)
        if subs:
            return None
        return self._in_background(self._release(sub.channel, subs))

    async def _release(self, channel: str, subs: set[Subscription]) -> None:
        async with self._lock:
            if self._channels.get(channel) is not subs or subs:
                return  # someone subscribed again meanwhile
            del self._channels[channel]
            if self._link is None:
                return
            try:
                async with asyncio.timeout(self._timeout):
                    await self._link.remove(channel)
            except Exception as exc:
                log.warning("unsubscribing %s failed: %s", channel, describe(exc))
                self._suspect.set()

    def _deliver(self, channel: str, message: str) -> None:
        subs = self._channels.get(channel)
        if not subs:
            return
        event = wire.decode(message)
        if event is None:
            return
        shared = delivered(event)  # one object for all: what they derive is shared too
        for sub in subs:
            sub.offer(shared)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._supervise_link()
            except Exception:  # a bug here must not end supervision for good
                log.exception("event hub supervisor failed; restarting it")
                await asyncio.sleep(self._backoff[1])

    async def _supervise_link(self) -> None:
        link = self._link
        if link is None:
            await self._reconnect()
            return
        reason = await self._watch(link)
        log.warning("broadcast backend lost (%s); reconnecting", reason)
        self._available = False
        self._state_changed()
        async with self._lock:  # let a subscribe or release in flight finish first
            self._link = None
            link.abandon(reason)
        await asyncio.shield(self._in_background(link.close()))
        await self._reconnect()

    async def _watch(self, link: BroadcastLink) -> str:
        """Return why ``link`` is no longer usable; wake on a death or a suspicion."""
        while True:
            self._suspect.clear()
            suspicion = asyncio.create_task(self._suspect.wait())
            try:
                await asyncio.wait(
                    {link.listener, suspicion},
                    timeout=self._probe_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                suspicion.cancel()
            try:
                async with asyncio.timeout(self._timeout):
                    await link.probe()
            except TimeoutError:
                return f"no answer within {self._timeout}s"
            except Exception as exc:
                return describe(exc)

    async def _reconnect(self) -> None:
        delay, longest = self._backoff
        while True:
            link = self._new_link()
            try:
                async with asyncio.timeout(self._timeout):
                    await link.connect()
                async with self._lock:
                    for channel in list(self._channels):
                        async with asyncio.timeout(self._timeout):
                            await link.add(channel)
                    self._link = link
                    self._available = True
                    self._state_changed()
                    for subs in self._channels.values():
                        for sub in subs:
                            sub.resync(RECONNECTED)
            except asyncio.CancelledError:  # disconnect() during a retry
                self._in_background(link.close())
                raise
            except Exception as exc:
                await link.close()
                pause = delay * random.uniform(0.5, 1.0)
                log.warning(
                    "broadcast backend still down (%s); retry in %.2fs", describe(exc), pause
                )
                await self._pause(pause)
                delay = min(delay * 2, longest)
                continue
            log.warning(
                "broadcast backend reconnected; channels resubscribed: %d", len(link.channels)
            )
            return

    async def _pause(self, seconds: float) -> None:
        """Sleep between reconnects; while a new subscription waits, retry every
        ``eager_retry`` instead (it has seconds to spare, not the full backoff)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wanted.wait()
            await asyncio.sleep(min(seconds, self._eager_retry))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that finishes even if its awaiter is cancelled; disconnect waits for it."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _new_link(self) -> BroadcastLink:
        return BroadcastLink(self.url, self._deliver, timeout=self._timeout)

    def _require_link(self) -> BroadcastLink:
        if not self._connected:
            raise BackendUnavailable(f"event hub for {self._where} is not connected")
        if not self._available or self._link is None:
            raise BackendUnavailable(f"broadcast backend {self._where} is down; reconnecting")
        return self._link

    @property
    def _where(self) -> str:
        """The URL without credentials, for messages."""
        parts = urlsplit(self.url)
        host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""
        return f"{parts.scheme}://{host}"
