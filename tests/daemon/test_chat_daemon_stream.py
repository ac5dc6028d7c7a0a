"""A turn end to end: real uvicorn, the daemon in its lifespan, a real WebSocket.

Each test opens its own chats and follows them through ``chatEvents`` until they
settle: the order of what streams, reconnecting with a cursor, interrupting,
retries and failures, read state, and what a stream opened late replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage
from db.vocabulary import ChatStatus, MessageRole, Visibility
from events import live_steps
from events.payloads import StatusChanged
from resolvers import chat_stream, chats
from tests.daemon.live import (
    CHAT_EVENTS,
    INTERRUPT,
    SEND,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    eventually,
    is_message,
    is_status,
    message_gid,
    messages_of,
    nonce,
    parse_time,
    read_chat,
    settled,
    text_of,
    typename,
)
from tests.daemon.live_app import admin, app, client, token  # noqa: F401 (fixtures)
from tests.harness import GraphQLClient

# app, client, admin and token: this module's own running app (tests.daemon.live_app).


# -- 1. deltas, then the durable message --------------------------------------------


async def test_turn_streams_deltas_then_the_durable_message(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    words = f"streamed word by word {nonce()} to the very end"
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f"/slow 40\n{words}")
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await sub.until(lambda e: is_status(e, "WAITING"))

    assert typename(events[0], "StatusChanged")
    assert events[0]["status"] in {"PENDING", "RUNNING"}
    assert all(e["chatId"] == chat["id"] for e in events)
    deltas = [i for i, e in enumerate(events) if typename(e, "PartDelta")]
    replies = [i for i, e in enumerate(events) if is_message(e, "ASSISTANT")]
    assert len(deltas) >= 3, events  # streamed, not one lump at the end
    assert len(replies) == 1, events
    reply = events[replies[0]]
    assert reply["cursor"]
    streamed = "".join(events[i]["part"]["text"] for i in deltas)
    assert streamed == text_of(reply["message"]["parts"]) == f"You said: {words}"
    assert all(events[i]["role"] == "ASSISTANT" and events[i]["partIndex"] == 0 for i in deltas)
    assert deltas[0] > 0
    assert deltas[-1] < replies[0] < len(events) - 1
    statuses = [e["status"] for e in events if typename(e, "StatusChanged")]
    assert statuses[-1] == "WAITING"
    assert statuses.count("WAITING") == 1
    usage = reply["message"]["usage"]
    assert usage["outputTokens"] == len(f"You said: {words}".split())
    assert usage["inputTokens"] > 0
    assert reply["message"]["runtimeMs"] >= 0


# -- 2. reconnecting with the last cursor ----------------------------------------------


async def test_reconnecting_with_the_last_cursor_loses_and_doubles_nothing(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    # user, assistant (text + tool call), tool result, assistant: four durable messages.
    script = f'/slow 60\n/reply Checking that for you {nonce()}\n/tool echo {{"x": 1}}'
    chat = await create_chat(client, token, script)
    chat_id = chat_uuid(chat["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        first = await sub.until(lambda e: is_message(e, "ASSISTANT"))
    cursor = [e for e in first if typename(e, "MessageCreated")][-1]["cursor"]
    # Disconnected: the tool message is written while nobody listens.
    await eventually(lambda: ChatMessage.filter(chat_id=chat_id, role=MessageRole.TOOL).exists())
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(
            CHAT_EVENTS, {"id": chat["id"], "after": cursor}, field="chatEvents"
        )
        second = await sub.until(lambda e: is_status(e, "WAITING"))

    delivered = [e["message"]["id"] for e in first + second if typename(e, "MessageCreated")]
    stored = [
        message_gid(m.id)
        for m in await messages_of(chat_id)
        if m.visibility is not Visibility.MODEL
    ]
    assert len(stored) == 4
    assert delivered == stored  # each once, in order, none missing
    roles = [e["message"]["role"] for e in second if typename(e, "MessageCreated")]
    assert roles == ["TOOL", "ASSISTANT"]


# -- 3. interrupt keeps the partial output ---------------------------------------------


async def test_interrupt_mid_stream_keeps_the_partial_output(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    reply = f"one two three four five six seven eight nine ten {nonce()}"
    chat = await create_chat(client, token, f"/slow 200\n/reply {reply}")
    chat_id = chat_uuid(chat["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        before = await sub.until(lambda e: typename(e, "PartDelta"))
        interrupted = await client.ok(INTERRUPT, {"id": chat["id"]}, token=token)
        assert interrupted["interruptChat"]["status"] == "INTERRUPTING"
        seen: set[str] = set()

        def both(event: dict[str, Any]) -> bool:
            if is_status(event, "WAITING"):
                seen.add("waiting")
            if is_message(event, "ASSISTANT"):
                seen.add("message")
            return seen == {"waiting", "message"}

        after = await sub.until(both)

    streamed = "".join(e["part"]["text"] for e in before + after if typename(e, "PartDelta"))
    kept = [e for e in after if is_message(e, "ASSISTANT")]
    assert len(kept) == 1
    text = text_of(kept[0]["message"]["parts"])
    assert text
    assert reply.startswith(text)
    assert text != reply
    assert streamed == text  # what was streamed is what is kept
    state = await read_chat(client, token, chat["id"])
    assert state["status"] == "WAITING"
    assert state["lastError"] is None
    row = await Chat.get(id=chat_id)
    assert row.worker_id is None
    # Nothing else is written later by the cancelled turn.
    assert len(await messages_of(chat_id, MessageRole.ASSISTANT)) == 1


# -- 4. retries -------------------------------------------------------------------------


async def test_overloaded_twice_then_the_reply(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    words = f"after two overloads {nonce()}"
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f"/fail overloaded 2\n{words}")
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await sub.until(settled)

    assert is_status(events[-1], "WAITING"), events
    retries = [e for e in events if typename(e, "RetryScheduled")]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert [r["delayMs"] for r in retries] == [50, 100]  # base 0.05 s, doubling
    for retry in retries:
        at = parse_time(retry["retryingAt"])
        assert abs(at - datetime.now(UTC)) < timedelta(seconds=30)
        assert retry["error"]["kind"] == "OVERLOADED"
        assert retry["error"]["retryable"] is True
        assert retry["error"]["statusCode"] == 529
        assert retry["error"]["message"]
    assert retries[0]["retryingAt"] < retries[1]["retryingAt"]
    replies = [e for e in events if is_message(e, "ASSISTANT")]
    assert [text_of(r["message"]["parts"]) for r in replies] == [f"You said: {words}"]
    assert events.index(retries[-1]) < events.index(replies[0])
    assert not [e for e in events if typename(e, "ChatFailed")]
    assert (await read_chat(client, token, chat["id"]))["lastError"] is None


async def test_non_retryable_error_then_a_later_success_clears_last_error(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f"/fail content_filter\n{nonce()}")
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await sub.until(settled)
        assert is_status(events[-1], "ERROR"), events
        assert not [e for e in events if typename(e, "RetryScheduled")]
        failed = [e for e in events if typename(e, "ChatFailed")]
        assert len(failed) == 1
        assert failed[0]["error"]["kind"] == "CONTENT_FILTER"
        assert failed[0]["error"]["retryable"] is False
        state = await read_chat(client, token, chat["id"])
        assert state["status"] == "ERROR"
        assert state["lastError"]["kind"] == "CONTENT_FILTER"

        await client.ok(SEND, {"id": chat["id"], "text": f"try again {nonce()}"}, token=token)
        await sub.until(lambda e: is_status(e, "WAITING"))
    state = await read_chat(client, token, chat["id"])
    assert state["status"] == "WAITING"
    assert state["lastError"] is None


# -- 13. opening the stream reads the chat ---------------------------------------------


async def test_opening_chat_events_marks_the_chat_read(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    chat = await create_chat(client, token, f"read me {nonce()}")
    await chat_settled(chat_uuid(chat["id"]))
    assert (await read_chat(client, token, chat["id"]))["hasUnread"] is True
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        first = await sub.next()
        assert is_status(first, "WAITING")
        assert (await read_chat(client, token, chat["id"]))["hasUnread"] is False
        # A later reply is read too while the stream is open.
        await client.ok(SEND, {"id": chat["id"], "text": f"more {nonce()}"}, token=token)
        await sub.until(lambda e: is_message(e, "ASSISTANT"))
        await sub.until(lambda e: is_status(e, "WAITING"))
        assert (await read_chat(client, token, chat["id"]))["hasUnread"] is False
    assert await live_steps_clear(chat_uuid(chat["id"]))


async def live_steps_clear(chat_id: uuid.UUID) -> bool:
    return live_steps.current(chat_id) is None


# -- subscribe first, then replay -------------------------------------------------------


async def test_a_stream_opened_mid_step_replays_each_delta_once(
    live_server: str, client: GraphQLClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delta flushed after the subscription attached but before the live step is
    read must come once (replayed or live), never both. mark_read, which sits in
    that window, is held until one more delta has gone out."""
    reply = " ".join(f"w{i}" for i in range(20)) + f" {nonce()}"
    chat = await create_chat(client, token, f"/slow 40\n/reply {reply}")
    chat_id = chat_uuid(chat["id"])
    original = chat_stream.mark_read
    armed = False

    def streamed_so_far() -> str:
        step = live_steps.current(chat_id)
        return "" if step is None else "".join(p.get("text", "") for p in step.parts)

    async def mark_read_after_a_delta(target: uuid.UUID) -> None:
        nonlocal armed
        if armed and target == chat_id:
            armed = False
            size = len(streamed_so_far())

            async def grown() -> bool:
                return len(streamed_so_far()) > size

            await eventually(grown, every=0.002)  # one more delta went out meanwhile
        await original(target)

    monkeypatch.setattr(chat_stream, "mark_read", mark_read_after_a_delta)
    async with GraphQLSocket.open(live_server, token) as socket:
        first = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await first.until(lambda e: typename(e, "PartDelta"))
        armed = True
        late = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await late.until(lambda e: is_status(e, "WAITING"))

    final = [e for e in events if is_message(e, "ASSISTANT")]
    assert text_of(final[0]["message"]["parts"]) == reply
    assert "".join(e["part"]["text"] for e in events if typename(e, "PartDelta")) == reply


async def test_the_replayed_status_is_read_after_subscribing(
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status replayed first is read after subscribing: a change published while
    the stream was opening (here, the turn ending) is not lost."""
    chat = await create_chat(client, token, f"/slow 30\n/reply short and sweet {nonce()}")
    chat_id = chat_uuid(chat["id"])
    await chat_settled(chat_id, ChatStatus.RUNNING)
    hub = app.state.event_hub
    ended = asyncio.Event()

    async def watch() -> None:
        async with hub.subscribe(f"chat:{chat_id}") as subscription:
            async for event in subscription:
                if isinstance(event, StatusChanged) and event.status is ChatStatus.WAITING:
                    ended.set()
                    return

    watcher = asyncio.create_task(watch())
    original = chats.own_chat  # what chat_stream imported

    async def own_chat_then_the_turn_ends(*args: Any, **kwargs: Any) -> Chat:
        row = await original(*args, **kwargs)
        assert row.status is ChatStatus.RUNNING
        await asyncio.wait_for(ended.wait(), 10)  # WAITING is published before we subscribe
        return row

    monkeypatch.setattr(chat_stream, "own_chat", own_chat_then_the_turn_ends)
    try:
        async with GraphQLSocket.open(live_server, token) as socket:
            sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
            events = await sub.until(lambda e: typename(e, "QueueUpdated"))  # replay done
            statuses = [e["status"] for e in events if typename(e, "StatusChanged")]
            if statuses[-1] != "WAITING":  # a correct server may still send it live
                with contextlib.suppress(AssertionError):
                    await sub.until(lambda e: is_status(e, "WAITING"), timeout=1)
                statuses = [e["status"] for e in sub.received if typename(e, "StatusChanged")]
    finally:
        watcher.cancel()
    assert (await Chat.get(id=chat_id)).status is ChatStatus.WAITING
    assert statuses[-1] == "WAITING", statuses
