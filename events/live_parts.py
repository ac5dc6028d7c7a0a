"""Where the running step's parts live, so a subscriber on any replica replays them.

The daemon streams a model step as coalesced part deltas. Each delta is applied
to the chat's live step here AND published on the chat's channel in the same
beat, with a sequence number that only grows per chat. A ``chatEvents`` stream
subscribes first, then reads the snapshot: every delta at or below the
snapshot's ``seq`` is already in it, every later one arrives live, so nothing
is missed or doubled.

* Redis (``redis://``): the step is a list per chat (a header naming the run,
  then every published delta) plus a per-chat counter, both expiring
  ``ttl_s`` after the last write. A Lua script appends, counts and PUBLISHes in
  one atomic round trip, so a reader's snapshot (also atomic) is exactly the
  deltas published before it. Every replica sees it.
* memory and Postgres: the step is kept in the process that runs it
  (``events.live_steps``); a subscriber on another replica sees deltas from the
  moment it subscribes, then the message.

A run is named by ``run_tag`` (claim time, then worker id). When a run starts on
a chat whose last step was left by an older run (that run died: its worker was
killed or lost the chat), the store drops it and publishes ``parts_reset``, so
clients drop text no message will ever replace. A run that stops without
keeping its output (handed back on shutdown) publishes the same as it ends.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from datetime import UTC, datetime
from typing import Protocol

from redis import asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from events import live_steps, wire
from events.channels import chat_channel
from events.hub import MAX_PAYLOAD_BYTES, BackendUnavailable, EventHub, PayloadTooLarge
from events.live_steps import LiveStep
from events.payloads import Event, PartDelta, PartJson, PartsReset
from events.redis_pubsub import pooled_client

log = logging.getLogger(__name__)

# A dead run's step must outlive stale recovery (AGENTGQL_DAEMON_STALE_AFTER_S,
# 300 s by default) so the run taking the chat over can tell clients to drop it.
DEFAULT_TTL_S = 600.0
RESET_REASON = "the run streaming this step stopped; its partial output is dropped"
_SEQ_ROOM = 24  # bytes the Lua script appends: ,"seq":N}


def run_tag(worker_id: uuid.UUID, started_at: datetime | None) -> str:
    """Names a run; tags of later claims sort after earlier ones (fixed-width UTC).
    A run without a claim time (tests drive turns directly) sorts first."""
    at = (started_at or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%S.%f}/{worker_id}"


class LivePartStore(Protocol):
    async def takeover(self, chat_id: uuid.UUID, run: str) -> bool:
        """As ``run`` starts: drop a step left by an older run and publish
        ``parts_reset`` (True when there was one); the chat's step is this run's."""
        ...

    async def begin(self, chat_id: uuid.UUID, run: str, *, reset: bool = False) -> None:
        """A step (or a retry of it) starts with no parts; ``reset`` also tells
        clients to drop what they have of it (it is about to be sent again)."""
        ...

    async def append(
        self, chat_id: uuid.UUID, run: str, deltas: list[tuple[int, PartJson]]
    ) -> None:
        """Apply and publish deltas (part index, delta); nothing once another run
        holds the chat's step."""
        ...

    async def end(self, chat_id: uuid.UUID, run: str, *, discarded: bool) -> None:
        """The step is over: its message carries it, or (``discarded``) nothing does
        and clients are told to drop it."""
        ...

    async def snapshot(self, chat_id: uuid.UUID) -> LiveStep | None:
        """The running step so far; its ``seq`` covers every delta and reset it holds."""
        ...


def _fitted(
    chat_id: uuid.UUID, deltas: list[tuple[int, PartJson]]
) -> list[tuple[int, PartJson, str]]:
    """Each delta as events under the payload cap (text split as needed) with its
    JSON sans closing brace; a non-text part too large to publish is left to the
    step's message."""
    out: list[tuple[int, PartJson, str]] = []
    pending = list(reversed(deltas))
    while pending:
        index, part = pending.pop()
        try:
            out.append((index, part, _open_json(PartDelta(chat_id, index, part))))
            continue
        except PayloadTooLarge:
            text = part.get("text")
            if not isinstance(text, str) or len(text) < 2:
                log.warning("a live part is too large to publish", extra={"chat_id": str(chat_id)})
                continue
        half = len(text) // 2
        pending += [(index, {**part, "text": text[half:]}), (index, {**part, "text": text[:half]})]
    return out


def _reset_event(chat_id: uuid.UUID, seq: int = 0) -> PartsReset:
    return PartsReset(chat_id, RESET_REASON, seq)


class MemoryLiveParts:
    """The step in this process (``events.live_steps``), published through the hub."""

    def __init__(self, hub: EventHub | None) -> None:
        self.hub = hub

    async def takeover(self, chat_id: uuid.UUID, run: str) -> bool:
        step = live_steps.current(chat_id)
        if step is None or step.run >= run:
            return False
        live_steps.end(chat_id)  # this run's first flush begins its own
        if not step.parts:
            return False
        await self._publish(chat_id, _reset_event(chat_id, live_steps.next_seq()))
        return True

    async def begin(self, chat_id: uuid.UUID, run: str, *, reset: bool = False) -> None:
        step = live_steps.current(chat_id)
        if step is not None and step.run > run:
            return
        live_steps.begin(chat_id, run)
        if reset:
            await self._publish(chat_id, _reset_event(chat_id, live_steps.next_seq()))

    async def append(
        self, chat_id: uuid.UUID, run: str, deltas: list[tuple[int, PartJson]]
    ) -> None:
        step = live_steps.current(chat_id)
        if step is None:
            step = live_steps.begin(chat_id, run)
        elif step.run != run:
            return  # the chat was taken over
        for index, part, _ in _fitted(chat_id, deltas):
            seq = live_steps.next_seq()
            step.append(index, part, seq)
            await self._publish(chat_id, PartDelta(chat_id, index, part, seq))

    async def end(self, chat_id: uuid.UUID, run: str, *, discarded: bool) -> None:
        step = live_steps.current(chat_id)
        if step is None or step.run != run:
            return
        live_steps.end(chat_id)
        if discarded:
            await self._publish(chat_id, _reset_event(chat_id, live_steps.next_seq()))

    async def snapshot(self, chat_id: uuid.UUID) -> LiveStep | None:
        return live_steps.current(chat_id)

    async def _publish(self, chat_id: uuid.UUID, event: Event) -> None:
        if self.hub is not None:
            await self.hub.publish(chat_channel(chat_id), event)


# KEYS: the step list, the counter. ARGV: run, ttl ms, channel, then JSON events
# without their closing brace. A list headed by another run belongs to a newer
# claim (an older one was reset by it): nothing is written or published.
_APPEND = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and head ~= ARGV[1] then return -1 end
if not head then redis.call('RPUSH', KEYS[1], ARGV[1]) end
local seq = 0
for i = 4, #ARGV do
  seq = redis.call('INCR', KEYS[2])
  local payload = ARGV[i] .. ',"seq":' .. seq .. '}'
  redis.call('RPUSH', KEYS[1], payload)
  redis.call('PUBLISH', ARGV[3], payload)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return seq
"""

# ARGV: run, ttl ms, channel, reset event without its closing brace or "" for
# none. A newer run's step stays.
_BEGIN = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and head > ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"seq":' .. seq .. '}')
end
return 1
"""

# ARGV: run, ttl ms, channel, reset event without its closing brace. The run
# takes the chat's step over: an older run's step is dropped (and clients told,
# if it had parts), then the list is headed by this run, so the older run can no
# longer write.
_TAKEOVER = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and head > ARGV[1] then return 0 end
local reset = 0
if head and head ~= ARGV[1] and redis.call('LLEN', KEYS[1]) > 1 then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"seq":' .. seq .. '}')
  reset = 1
end
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return reset
"""

# ARGV: as for _TAKEOVER, then "discard" (publish the reset) or "end" (quietly).
# Only this run's own step is dropped.
_DROP = """
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[5] == 'end' then return 1 end
local seq = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"seq":' .. seq .. '}')
return 1
"""


def _open_json(event: PartDelta | PartsReset) -> str:
    """The event's JSON (without a seq) sans closing brace: the script appends the seq."""
    payload = wire.encode(event)
    if len(payload) + _SEQ_ROOM >= MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"{event.kind}: {len(payload)} bytes")
    return payload[:-1].decode()


class RedisLiveParts:
    """The step in Redis, written and published by one script per flush."""

    def __init__(self, url: str, *, ttl_s: float = DEFAULT_TTL_S, timeout: float = 5.0) -> None:
        self.client = pooled_client(
            url,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.ttl_ms = int(ttl_s * 1000)
        self._append = self.client.register_script(_APPEND)
        self._begin = self.client.register_script(_BEGIN)
        self._takeover = self.client.register_script(_TAKEOVER)
        self._drop = self.client.register_script(_DROP)

    @staticmethod
    def _keys(chat_id: uuid.UUID) -> list[str]:
        return [f"agentgql:live:{chat_id}", f"agentgql:live:{chat_id}:seq"]

    async def takeover(self, chat_id: uuid.UUID, run: str) -> bool:
        reset = _open_json(_reset_event(chat_id))
        args: list[str | int] = [run, self.ttl_ms, chat_channel(chat_id), reset]
        return bool(await self._takeover(keys=self._keys(chat_id), args=args))

    async def begin(self, chat_id: uuid.UUID, run: str, *, reset: bool = False) -> None:
        event = _open_json(_reset_event(chat_id)) if reset else ""
        args: list[str | int] = [run, self.ttl_ms, chat_channel(chat_id), event]
        await self._begin(keys=self._keys(chat_id), args=args)

    async def append(
        self, chat_id: uuid.UUID, run: str, deltas: list[tuple[int, PartJson]]
    ) -> None:
        events = [payload for _, _, payload in _fitted(chat_id, deltas)]
        if not events:
            return
        args: list[str | int] = [run, self.ttl_ms, chat_channel(chat_id), *events]
        await self._append(keys=self._keys(chat_id), args=args)

    async def end(self, chat_id: uuid.UUID, run: str, *, discarded: bool) -> None:
        reset = _open_json(_reset_event(chat_id))
        mode = "discard" if discarded else "end"
        args: list[str | int] = [run, self.ttl_ms, chat_channel(chat_id), reset, mode]
        await self._drop(keys=self._keys(chat_id), args=args)

    async def snapshot(self, chat_id: uuid.UUID) -> LiveStep | None:
        try:
            entries, seq = await self._read(chat_id)
        except (redis.ConnectionError, redis.TimeoutError):
            # A pooled connection may have died with a Redis restart; reads are
            # safe to repeat on a fresh one (writes are not: see StepStream).
            try:
                entries, seq = await self._read(chat_id)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise BackendUnavailable(f"reading the live step: {exc}") from exc
        if not entries and seq is None:
            return None
        step = LiveStep(seq=int(seq or 0), run=entries[0].decode() if entries else "")
        for entry in entries[1:]:
            event = wire.decode(entry)
            if isinstance(event, PartDelta):
                step.append(event.index, event.part, event.seq)
        step.seq = int(seq or 0)  # resets and earlier steps count too
        return step

    async def _read(self, chat_id: uuid.UUID) -> tuple[list[bytes], bytes | None]:
        steps, counter = self._keys(chat_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(steps, 0, -1)
            pipe.get(counter)
            entries, seq = await pipe.execute()
        return entries, seq

    async def close(self) -> None:
        await self.client.aclose()


# One store per hub and event loop (a Redis client belongs to the loop it ran on).
_stores: weakref.WeakKeyDictionary[EventHub, tuple[asyncio.AbstractEventLoop, LivePartStore]] = (
    weakref.WeakKeyDictionary()
)
_memory = MemoryLiveParts(None)


def live_parts(hub: EventHub | None) -> LivePartStore:
    """The store that goes with ``hub``'s broadcast backend."""
    if hub is None:
        return _memory
    loop = asyncio.get_running_loop()
    cached = _stores.get(hub)
    if cached is not None and cached[0] is loop:
        return cached[1]
    store: LivePartStore
    if hub.url.split(":", 1)[0] in {"redis", "rediss"}:
        store = RedisLiveParts(hub.url)
    else:
        store = MemoryLiveParts(hub)
    _stores[hub] = (loop, store)
    return store
