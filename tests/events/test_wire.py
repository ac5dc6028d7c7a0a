"""The wire format: every event survives the trip as the same typed event, in
the small camelCase JSON every backend (and a Postgres NOTIFY) carries; anything
that is not an event is dropped instead of reaching a subscriber."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from db.vocabulary import ChatErrorKind, ChatListEventKind, ChatStatus
from events.hub import MAX_PAYLOAD_BYTES
from events.payloads import (
    ChatErrorInfo,
    ChatFailed,
    ChatListChanged,
    ConfigChanged,
    DebugRunChanged,
    DebugRunPhase,
    Event,
    EventKind,
    GitChanged,
    GitRefreshRequested,
    HistoryReset,
    MessageAnnounced,
    PartDelta,
    PartsReset,
    QueueChanged,
    Resync,
    RetryScheduled,
    SessionEnd,
    StatusChanged,
    TitleFailed,
    TitleRequested,
    WorkAvailable,
)
from events.wire import as_json, decode, encode

CHAT = uuid.uuid4()
ERROR = ChatErrorInfo(ChatErrorKind.RATE_LIMIT, "slow down", None, "openai", True, 429)
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

EVERY_KIND: list[Event] = [
    StatusChanged(CHAT, ChatStatus.RUNNING, "worker-1"),
    StatusChanged(CHAT, ChatStatus.PENDING),
    PartDelta(CHAT, 2, {"type": "text", "text": "héllo"}, 7),
    PartsReset(CHAT, "the run stopped", 9),
    RetryScheduled(CHAT, 1, 1000, AT, ERROR),
    ChatFailed(CHAT, ERROR),
    MessageAnnounced(CHAT, 42),
    QueueChanged(CHAT),
    HistoryReset(CHAT),
    *(ChatListChanged(CHAT, k) for k in ChatListEventKind if k is not ChatListEventKind.RESYNC),
    TitleFailed(CHAT),
    WorkAvailable(CHAT),
    TitleRequested(CHAT),
    GitRefreshRequested(CHAT),
    GitChanged(CHAT, ("/workspace/a",), ("/workspace/b",), AT),
    DebugRunChanged(
        CHAT,
        uuid.uuid4(),
        DebugRunPhase.FINISHED,
        status="completed",
        step_count=2,
        usage={"input_tokens": 3, "output_tokens": 5},
        cost_micros=13,
        finished_at=AT,
    ),
    SessionEnd(CHAT, uuid.uuid4(), role_changed=True),
    SessionEnd(CHAT),
    ConfigChanged("provider", CHAT),
    Resync("overflow"),
]


@pytest.mark.parametrize("event", EVERY_KIND, ids=lambda e: type(e).__name__)
def test_every_event_comes_back_as_it_was_sent(event: Event) -> None:
    payload = encode(event)
    assert len(payload) < MAX_PAYLOAD_BYTES
    assert decode(payload.decode()) == event


def test_every_kind_has_an_event() -> None:
    assert {e.kind for e in EVERY_KIND} == set(EventKind)


def test_the_wire_keeps_its_names() -> None:
    """Replicas and the Redis live-part store read these exact fields."""
    assert as_json(PartDelta(CHAT, 0, {"type": "text", "text": "x"}, 3)) == {
        "kind": "part",
        "chatId": str(CHAT),
        "role": "assistant",
        "partIndex": 0,
        "part": {"type": "text", "text": "x"},
        "seq": 3,
    }
    assert as_json(ChatListChanged(CHAT, ChatListEventKind.TITLE_CHANGED)) == {
        "kind": "title_changed",
        "chatId": str(CHAT),
    }
    assert as_json(ChatFailed(CHAT, ERROR))["error"] == {
        "kind": "rate_limit",
        "message": "slow down",
        "detail": None,
        "provider": "openai",
        "retryable": True,
        "statusCode": 429,
    }


def test_a_part_without_seq_leaves_room_for_the_store_to_append_it() -> None:
    assert "seq" not in as_json(PartDelta(CHAT, 0, {"type": "text", "text": "x"}))


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        '{"kind": "no-such-kind", "chatId": "x"}',
        '{"kind": "status", "chatId": "not-a-uuid", "status": "running"}',
        orjson.dumps({"kind": "status", "chatId": str(CHAT), "status": "asleep"}).decode(),
        '{"kind": "message"}',
    ],
)
def test_what_is_not_an_event_is_dropped(message: str) -> None:
    assert decode(message) is None


def test_an_unknown_error_kind_reads_as_generic() -> None:
    raw = orjson.dumps({"kind": "error", "chatId": str(CHAT), "error": {"kind": "new-kind"}})
    event = decode(raw)
    assert isinstance(event, ChatFailed)
    assert event.error.kind is ChatErrorKind.GENERIC
