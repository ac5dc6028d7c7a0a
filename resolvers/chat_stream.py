"""The live chat stream behind ``chatEvents``: replay, then live, nothing doubled.

Order of work: read the messages after the client's cursor, subscribe to the
chat's channel, then replay from the database (status, the running step's parts
so far, the messages after the cursor, the queue), then translate live events.
Durable messages are read from the database after the last id delivered, so a
message announced twice, or announced while it was being replayed, is still
delivered once. A ``resync`` from the hub (overflow, backend reconnect) is
passed on and the stream starts over on a new subscription from the last
message delivered: status, running step, messages, queue, as a new subscriber
gets them (a client drops its partial step on a resync).

A step's deltas are all published before its message is announced, so in a
subscriber's queue they come before that announcement. A message read ahead of
its announcement (committed after the subscription began: read by the replay
after subscribing, or by a live read past the announced id) makes the deltas
still queued before the announcement stale: they are dropped until it arrives,
so no delta of a step follows the step's MessageCreated. Messages read before
subscribing were announced (if at all) before it, so they hold nothing back.

Everything made from a hub event is the same for all subscribers of the chat,
so it is made once and shared (``events.sharing``; the rows themselves and
which event becomes which are in ``resolvers.chat_event_rows``): the rows of a status, a delta,
the messages read after a cursor, the queue. The subscription executor then
runs each distinct selection once per event. What a subscriber replays (status,
deltas, queue) and its resyncs stay its own; only message reads of the same
cursor are shared with whoever reads it at the same time.

Live events that need no read (status, deltas, resets, errors) are taken
straight from the hub while the stream waits for its next event
(``Subscription.direct``): their frames go to the socket through the
operation's lane (``events.sharing.FrameLane``) without resuming this
generator. Whatever the lane cannot send comes through the loop below as before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from tortoise.expressions import F

from db.keyset import InvalidCursor
from db.message_rows import cursor_id, message_cursor, messages_after
from db.models import Chat, ChatQueuedMessage
from db.vocabulary import ChatStatus, MessageRole
from events import live_steps
from events.channels import chat_channel
from events.live_parts import live_parts
from events.payloads import (
    ChatFailed,
    HistoryReset,
    MessageAnnounced,
    PartDelta,
    PartsReset,
    QueueChanged,
    Resync,
    RetryScheduled,
    StatusChanged,
)
from events.sharing import FrameLane, current_lane, share, shared_read
from events.subscription import Subscription
from resolvers.chat_event_rows import (
    MessageCreatedEvent,
    PartDeltaEvent,
    QueueUpdatedEvent,
    ResyncEvent,
    StatusChangedEvent,
    live_row,
)
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.errors import bad_input


async def mark_read(chat_id: uuid.UUID) -> None:
    """Opening (and following) the live stream reads the chat."""
    await Chat.filter(id=chat_id, last_assistant_message_id__isnull=False).update(
        last_read_message_id=F("last_assistant_message_id")
    )


async def _read_messages(chat_id: uuid.UUID, after_id: int) -> list[MessageCreatedEvent]:
    rows = await messages_after(chat_id, after_id)
    return [share(MessageCreatedEvent(chat_id, message_cursor(row.id), row)) for row in rows]


# Every subscriber of a chat reads the same new messages when one is announced:
# concurrent reads of the same (chat, after id) share one query and its events.
_reads: dict[tuple[uuid.UUID, int], asyncio.Future[list[MessageCreatedEvent]]] = {}


async def _shared_read(chat_id: uuid.UUID, after_id: int) -> list[MessageCreatedEvent]:
    key = (chat_id, after_id)
    pending = _reads.get(key)
    if pending is None:
        pending = asyncio.ensure_future(_read_messages(chat_id, after_id))
        _reads[key] = pending
        pending.add_done_callback(lambda _: _reads.pop(key, None))
    return await asyncio.shield(pending)


async def _read_queue(chat_id: uuid.UUID) -> QueueUpdatedEvent:
    rows = await ChatQueuedMessage.filter(chat_id=chat_id).order_by("id")
    return QueueUpdatedEvent(chat_id, rows)


async def _shared_queue(chat_id: uuid.UUID) -> QueueUpdatedEvent:
    return share(await _read_queue(chat_id))


class _Replay:
    def __init__(self, chat_id: uuid.UUID, after: int) -> None:
        self.chat_id = chat_id
        self.last_id = after
        self.part_seq = 0  # live deltas up to here came with the replayed step
        # The newest step message delivered before this subscription announced
        # it (0: none): deltas queued until that announcement are its step's.
        self.ahead = 0
        # The status this subscriber holds: a replay that read the chat after a
        # change committed sends it, so its announcement, arriving later, is not.
        self.status: ChatStatus | None = None

    def listening(self, step: live_steps.LiveStep | None) -> None:
        """A new subscription: nothing of it is stale yet; ``step`` is replayed."""
        self.part_seq = 0 if step is None else step.seq
        self.ahead = 0

    def read_ahead(self, delivered: list[MessageCreatedEvent], announced: int = 0) -> None:
        """Step messages in ``delivered`` past ``announced`` are still to be announced."""
        for event in delivered:
            row = event.message
            if row.id > max(announced, self.ahead) and row.role is MessageRole.ASSISTANT:
                self.ahead = row.id

    def announced(self, message_id: int) -> None:
        """Every delta queued before this announcement has been passed."""
        if message_id >= self.ahead:
            self.ahead = 0

    def status_changed(self, status: ChatStatus) -> bool:
        """Whether ``status`` is news to this subscriber (then it holds it)."""
        if status is self.status:
            return False
        self.status = status
        return True

    def stale(self, seq: int) -> bool:
        """A delta this subscriber already has, or of a step already delivered."""
        return seq <= self.part_seq or self.ahead > 0

    async def messages(self, event: object | None = None) -> list[MessageCreatedEvent]:
        """Every message after the last one delivered; for a hub event, read once
        by all subscribers at the same cursor."""
        out: list[MessageCreatedEvent] = []
        while True:
            read = partial(_shared_read, self.chat_id, self.last_id)
            if event is None:
                page = await read()
            else:
                page = await shared_read(event, ("messages", self.chat_id, self.last_id), read)
            out += page
            if page:
                self.last_id = page[-1].message.id
            if len(page) < 200:
                return out

    async def queue(self, event: object | None = None) -> QueueUpdatedEvent:
        if event is None:
            return await _read_queue(self.chat_id)
        read = partial(_shared_queue, self.chat_id)
        return await shared_read(event, ("queue", self.chat_id), read)


async def stream_chat_events(
    ctx: RequestContext, chat_gid: str, after: str | None
) -> AsyncIterator[object]:
    chat = await own_chat(ctx, chat_gid, "chatId")
    try:
        start = cursor_id(after)
    except InvalidCursor:
        raise bad_input("after", "not a valid message cursor") from None
    if ctx.events is None:
        raise RuntimeError("no event hub")
    hub = ctx.events.hub
    replay = _Replay(chat.id, start)
    first = True
    while True:
        # Read before subscribing: these were announced (if at all) before it.
        before = await replay.messages()
        async with hub.subscribe(chat_channel(chat.id)) as subscription:
            # Everything else replayed is read after subscribing, so nothing
            # falls between; messages committed meanwhile are read ahead.
            step = await live_parts(hub).snapshot(chat.id)  # any replica's step
            snapshot = [] if step is None else [dict(p) for p in step.parts]
            replay.listening(step)
            current = await Chat.filter(id=chat.id).first()
            if first:
                await mark_read(chat.id)
            status = current.status if current else chat.status
            replay.status = status
            yield StatusChangedEvent(chat.id, status)
            for index, part in enumerate(snapshot):
                if part and step is not None:
                    yield PartDeltaEvent(chat.id, step.role, index, part)
            for created in before:
                yield created
            after_subscribing = await replay.messages()
            replay.read_ahead(after_subscribing)
            for created in after_subscribing:
                yield created
            if not first and any(
                e.message.role is MessageRole.ASSISTANT for e in before + after_subscribing
            ):
                await mark_read(chat.id)
            yield await replay.queue()
            first = False
            resync: ResyncEvent | None = None
            lane = current_lane()
            if lane is not None:
                subscription.direct = partial(_direct, lane, ctx, replay, subscription)
            async for event in subscription:
                ctx.reset_loaders()  # loaders live for one event, never the connection
                match event:
                    case MessageAnnounced(message_id=announced):
                        async for created in _announced(chat.id, event, announced, replay):
                            yield created
                    case QueueChanged():
                        yield await replay.queue(event)
                    case Resync(reason=reason):
                        resync = ResyncEvent(chat.id, reason)
                        break
                    case _:
                        row = live_row(chat.id, event, replay)
                        if row is not None:
                            yield row
        if resync is None:
            return  # the hub closed the subscription
        yield resync  # then start over, as a new subscriber from the last message


async def _announced(
    chat_id: uuid.UUID, event: MessageAnnounced, announced: int, replay: _Replay
) -> AsyncIterator[MessageCreatedEvent]:
    """The messages after this stream's cursor, read once for all its watchers."""
    replay.announced(announced)
    delivered = await replay.messages(event)
    replay.read_ahead(delivered, announced)
    for created in delivered:
        yield created
    if any(e.message.role is MessageRole.ASSISTANT for e in delivered):
        # The viewer is watching: a new reply is read (once for all watchers).
        await shared_read(event, ("mark_read", chat_id), partial(mark_read, chat_id))


# Hub events whose rows need no read (``live_row``): these may skip the generator.
_DIRECT = (PartDelta, StatusChanged, PartsReset, HistoryReset, RetryScheduled, ChatFailed)


def _direct(
    lane: FrameLane, ctx: RequestContext, replay: _Replay, subscription: Subscription, event: Any
) -> bool:
    """Deliver a live event through the lane; False leaves it to the stream's loop
    exactly as if it had been queued (the replay state is put back)."""
    if not isinstance(event, _DIRECT):
        return False
    status = replay.status
    row = live_row(replay.chat_id, event, replay)
    if row is None:
        return True  # this stream skips it, as the loop would
    ctx.reset_loaders()  # as the loop does per event
    delivered = False
    try:
        delivered = lane.try_deliver(row, subscription)
    finally:
        if not delivered:  # failed or raised: the loop must see the event as new
            replay.status = status
    return delivered
