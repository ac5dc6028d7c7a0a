"""Hub events → the rows ``chatEvents`` yields, in one place.

A reader looks here for what each bus event becomes in the GraphQL stream:
``PartDelta`` → PartDelta, ``StatusChanged`` → StatusChanged, ``PartsReset`` →
PartsReset, ``HistoryReset`` → HistoryReset, ``RetryScheduled`` →
RetryScheduled, ``ChatFailed`` (the turn's error) → ChatFailed, a subscription's
``Resync`` → Resync. ``MessageAnnounced`` and ``QueueChanged`` need a database
read after the stream's cursor (``resolvers.chat_stream``): their rows are
MessageCreated and QueueUpdated. The owner's channel maps in
``resolvers.chat_list_stream`` (``ChatListChanged.change`` is the list kind).

Rows made from a hub event are the same for every subscriber of the chat, so
they are built once and shared (``events.sharing.shared_row``); the stream's own
state only decides whether a subscriber gets the row at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from db.message_rows import MessageRow
from db.models import ChatQueuedMessage
from db.vocabulary import ChatStatus
from events.payloads import (
    ChatFailed,
    Event,
    HistoryReset,
    PartDelta,
    PartsReset,
    RetryScheduled,
    StatusChanged,
)
from events.sharing import shared_row


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


class StreamState(Protocol):
    """What one subscriber already holds (its replay, the step it was sent)."""

    part_seq: int

    def stale(self, seq: int) -> bool: ...

    def status_changed(self, status: ChatStatus) -> bool: ...


def live_row(chat_id: uuid.UUID, event: Event, state: StreamState) -> object | None:
    """The row of an event that needs no read (the live path of every delta and
    status, without a generator per event); None when this stream skips it or
    the event is not one of these."""
    match event:
        case PartDelta(seq=seq):
            if state.stale(seq):
                return None  # came with the replayed step, or its step was delivered
            return shared_row(event, ("part", chat_id), lambda: _part_row(chat_id, event))
        case StatusChanged(status=status):
            if not state.status_changed(status):
                return None  # already sent by the replay
            return shared_row(
                event, ("status", chat_id), lambda: StatusChangedEvent(chat_id, status)
            )
        case PartsReset(reason=reason, seq=seq):
            if seq <= state.part_seq:
                return None  # before the replayed step
            return shared_row(
                event, ("parts_reset", chat_id), lambda: PartsResetEvent(chat_id, reason)
            )
        case HistoryReset():
            return shared_row(event, ("history_reset", chat_id), lambda: HistoryResetEvent(chat_id))
        case RetryScheduled(attempt=attempt, delay_ms=delay_ms, retrying_at=at, error=error):
            return shared_row(
                event,
                ("retry", chat_id),
                lambda: RetryScheduledEvent(chat_id, attempt, delay_ms, at, error.to_json()),
            )
        case ChatFailed(error=error):
            return shared_row(
                event, ("error", chat_id), lambda: ChatFailedEvent(chat_id, error.to_json())
            )
    return None


def _part_row(chat_id: uuid.UUID, event: PartDelta) -> PartDeltaEvent:
    return PartDeltaEvent(chat_id, event.role, event.index, event.part)
