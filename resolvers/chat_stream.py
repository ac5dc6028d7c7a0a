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
so it is made once and shared (``events.sharing``): the rows of a status, a delta,
the messages read after a cursor, the queue. The subscription executor then
runs each distinct selection once per event. What a subscriber replays (status,
deltas, queue) and its resyncs stay its own; only message reads of the same
cursor are shared with whoever reads it at the same time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from tortoise.expressions import F

from db.keyset import InvalidCursor
from db.message_rows import MessageRow, cursor_id, message_cursor, messages_after
from db.models import Chat, ChatQueuedMessage
from db.vocabulary import ChatStatus, MessageRole
from events import live_steps
from events.announcer import chat_channel
from events.live_parts import live_parts
from events.sharing import share, shared_read, shared_row
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.errors import bad_input


@dataclass
class PartDeltaEvent:
    chat_id: uuid.UUID
    role: str
    part_index: int
    part: dict[str, Any]


@dataclass
class MessageCreatedEvent:
    chat_id: uuid.UUID
    cursor: str
    message: MessageRow


@dataclass
class StatusChangedEvent:
    chat_id: uuid.UUID
    status: ChatStatus


@dataclass
class ChatFailedEvent:
    chat_id: uuid.UUID
    error: dict[str, Any]


@dataclass
class RetryScheduledEvent:
    chat_id: uuid.UUID
    attempt: int
    delay_ms: int
    retrying_at: datetime
    error: dict[str, Any]


@dataclass
class QueueUpdatedEvent:
    chat_id: uuid.UUID
    queued_messages: list[ChatQueuedMessage]


@dataclass
class PartsResetEvent:
    """The running step's parts so far are void (their run died): drop them."""

    chat_id: uuid.UUID
    reason: str


@dataclass
class HistoryResetEvent:
    chat_id: uuid.UUID


@dataclass
class ResyncEvent:
    chat_id: uuid.UUID | None
    reason: str


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

    async def messages(self, event: Mapping[str, Any] | None = None) -> list[MessageCreatedEvent]:
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

    async def queue(self, event: Mapping[str, Any] | None = None) -> QueueUpdatedEvent:
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
            async for raw in subscription:
                ctx.reset_loaders()  # loaders live for one event, never the connection
                kind = raw.get("kind")
                if kind in _PLAIN:
                    row = _plain_row(chat.id, raw, replay)
                    if row is not None:
                        yield row
                    continue
                if kind == "resync":
                    reason = str(raw.get("reason", "events were dropped"))
                    resync = ResyncEvent(chat.id, reason)
                    break
                async for event in _translate(ctx, chat.id, raw, replay):
                    yield event
        if resync is None:
            return  # the hub closed the subscription
        yield resync  # then start over, as a new subscriber from the last message


_PLAIN = frozenset({"part", "parts_reset", "status", "history_reset", "retry", "error"})


def _plain_row(chat_id: uuid.UUID, raw: dict[str, Any], replay: _Replay) -> object | None:
    """The row of an event that needs no read (the live path of every delta and
    status, without a generator per event); None when this stream skips it."""
    kind = raw["kind"]
    if kind == "part":
        if replay.stale(int(raw.get("seq") or 0)):
            return None  # came with the replayed step, or its step was delivered
        return shared_row(
            raw,
            ("part", chat_id),
            lambda: PartDeltaEvent(
                chat_id, raw.get("role", "assistant"), raw["partIndex"], raw["part"]
            ),
        )
    if kind == "status":
        if not replay.status_changed(ChatStatus(raw["status"])):
            return None  # already sent by the replay
        return shared_row(
            raw, ("status", chat_id), lambda: StatusChangedEvent(chat_id, ChatStatus(raw["status"]))
        )
    if kind == "parts_reset":
        if int(raw.get("seq") or 0) <= replay.part_seq:
            return None  # before the replayed step
        reason = str(raw.get("reason") or "")
        return shared_row(raw, ("parts_reset", chat_id), lambda: PartsResetEvent(chat_id, reason))
    if kind == "history_reset":
        return shared_row(raw, ("history_reset", chat_id), lambda: HistoryResetEvent(chat_id))
    if kind == "retry":
        return shared_row(
            raw,
            ("retry", chat_id),
            lambda: RetryScheduledEvent(
                chat_id,
                raw["attempt"],
                raw["delayMs"],
                datetime.fromisoformat(raw["retryingAt"]),
                raw["error"],
            ),
        )
    return shared_row(raw, ("error", chat_id), lambda: ChatFailedEvent(chat_id, raw["error"]))


async def _translate(
    ctx: RequestContext, chat_id: uuid.UUID, raw: dict[str, Any], replay: _Replay
) -> AsyncIterator[object]:
    kind = raw.get("kind")
    if kind == "message":
        announced = _message_id(raw)
        replay.announced(announced)
        delivered = await replay.messages(raw)
        replay.read_ahead(delivered, announced)
        for event in delivered:
            yield event
        if any(e.message.role is MessageRole.ASSISTANT for e in delivered):
            # The viewer is watching: a new reply is read (once for all watchers).
            await shared_read(raw, ("mark_read", chat_id), partial(mark_read, chat_id))
    elif kind == "queue":
        yield await replay.queue(raw)


def _message_id(raw: Mapping[str, Any]) -> int:
    """The announced message's id; 0 (announces nothing) when absent or malformed."""
    value = raw.get("messageId")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
