"""Chat statuses as clients see them: RUNNING once per run, INTERRUPTING while a
cancel is in flight, REQUIRES_ACTION while a question waits for the user.

Real uvicorn, the daemon in its lifespan, a real WebSocket: what is asserted is
what a client's ``chatEvents`` shows and what ``chat`` / ``chats`` read back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.tool_registry import ToolRegistry
from daemon.tools import ask_user_question
from db.models import Chat, ChatQueuedMessage
from db.vocabulary import ChatStatus, MessageRole
from events.announcer import ChatAnnouncer
from events.payloads import StatusChanged
from tests.conftest import make_settings
from tests.daemon import live_app
from tests.daemon.live import (
    CHAT_EVENTS,
    ECHO,
    FAST_DAEMON,
    INTERRUPT,
    SEND,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    eventually,
    is_message,
    is_status,
    messages_of,
    nonce,
    read_chat,
    running_app,
    settled,
    typename,
)
from tests.harness import GraphQLClient

# The shared fixtures of a module with its own running app (tests.daemon.live_app).
admin, client, token = live_app.admin, live_app.client, live_app.token

QUESTION = {
    "questions": [
        {
            "header": "Colour",
            "question": "Which colour should the button be?",
            "options": [{"label": "Red"}, {"label": "Blue"}],
        }
    ]
}
ASK = f"/reply Let me ask you first.\n/tool ask_user_question {json.dumps(QUESTION)}"
CHATS_BY_QUERY = "query($q: String!) { chats(query: $q) { nodes { id status } } }"


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """The daemon runs, fast, with ``ask_user_question`` among its tools."""
    settings = make_settings(database_url, tmp_path_factory, **FAST_DAEMON)
    tools = ToolRegistry([ECHO, ask_user_question.TOOL])
    async with running_app(settings, tools=tools) as application:
        yield application


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["status"] for e in events if typename(e, "StatusChanged")]


def replayed(event: dict[str, Any]) -> bool:
    """The replay of a stream ends with the queue."""
    return typename(event, "QueueUpdated")


# -- RUNNING once per run ----------------------------------------------------------------


async def test_a_failing_run_announces_running_once(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    chat = await create_chat(client, token, f"hello {nonce()}")
    await chat_settled(chat_uuid(chat["id"]))
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(replayed)
        await client.ok(SEND, {"id": chat["id"], "text": f"/fail auth\n{nonce()}"}, token=token)
        events = await sub.until(settled)
    assert statuses(events) == ["PENDING", "RUNNING", "ERROR"], events


async def test_a_stream_opened_between_claim_and_announcement_shows_running_once(
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim commits RUNNING, then the run announces it: a stream that reads the
    row in between must not show RUNNING twice."""
    replay_done = asyncio.Event()
    original = ChatAnnouncer.status

    async def publish_after_the_replay(self: ChatAnnouncer, *args: Any) -> None:
        if args[2] == ChatStatus.RUNNING:  # the run's announcement
            await asyncio.wait_for(replay_done.wait(), 10)
        await original(self, *args)

    monkeypatch.setattr(ChatAnnouncer, "status", publish_after_the_replay)
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f"/fail auth\n{nonce()}")
        await chat_settled(chat_uuid(chat["id"]), ChatStatus.RUNNING)
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(replayed)
        replay_done.set()
        await sub.until(settled)
    assert statuses(sub.received) == ["RUNNING", "ERROR"], sub.received


# -- INTERRUPTING until the run has stopped ---------------------------------------------


async def test_interrupting_a_running_chat_shows_interrupting_until_the_run_stops(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    reply = f"one two three four five six seven eight nine ten {nonce()}"
    chat = await create_chat(client, token, f"/slow 200\n/reply {reply}")
    chat_id = chat_uuid(chat["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))
        interrupted = await client.ok(INTERRUPT, {"id": chat["id"]}, token=token)
        assert interrupted["interruptChat"]["status"] == "INTERRUPTING"
        events = await sub.until(lambda e: is_status(e, "WAITING"))

    assert statuses(events) == ["INTERRUPTING", "WAITING"], events
    # WAITING comes once the run has stopped: after it kept what it had streamed.
    kept = [i for i, e in enumerate(events) if is_message(e, "ASSISTANT")]
    assert len(kept) == 1, events
    assert kept[0] < len(events) - 1
    state = await read_chat(client, token, chat["id"])
    assert state["status"] == "WAITING"
    assert state["lastError"] is None
    row = await Chat.get(id=chat_id)
    assert row.worker_id is None


async def test_interrupting_twice_changes_nothing_more(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    chat = await create_chat(client, token, f"/slow 200\n/reply {'word ' * 20}{nonce()}")
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))
        first = await client.ok(INTERRUPT, {"id": chat["id"]}, token=token)
        second = await client.ok(INTERRUPT, {"id": chat["id"]}, token=token)
        events = await sub.until(lambda e: is_status(e, "WAITING"))
    assert first["interruptChat"]["status"] == "INTERRUPTING"
    assert second["interruptChat"]["status"] in {"INTERRUPTING", "WAITING"}
    assert statuses(events) == ["INTERRUPTING", "WAITING"], events


async def test_a_message_sent_while_interrupting_runs_after_the_stop(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    chat = await create_chat(client, token, f"/slow 200\n/reply {'word ' * 20}{nonce()}")
    chat_id = chat_uuid(chat["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))
        await client.ok(INTERRUPT, {"id": chat["id"]}, token=token)
        sent = await client.ok(SEND, {"id": chat["id"], "text": f"next {nonce()}"}, token=token)
        # Still INTERRUPTING: queued, it waits its turn. A daemon that already
        # stopped leaves the chat WAITING and the message runs at once. Either way
        # it runs after the stop, which is what a user sees.
        queued = sent["sendMessage"]["queuedMessage"] is not None
        waits = 0

        def second_wait(event: dict[str, Any]) -> bool:
            nonlocal waits
            waits += is_status(event, "WAITING")
            return waits == 2

        events = await sub.until(second_wait)
    assert statuses(events) == ["INTERRUPTING", "WAITING", "PENDING", "RUNNING", "WAITING"]
    assert queued or sent["sendMessage"]["message"] is not None
    assert not await ChatQueuedMessage.filter(chat_id=chat_id).exists()
    users = await messages_of(chat_id, MessageRole.USER)
    assert len(users) == 2


async def test_a_message_sent_with_interrupt_runs_once_the_run_has_stopped(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    chat = await create_chat(client, token, f"/slow 200\n/reply {'word ' * 20}{nonce()}")
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))
        variables = {"id": chat["id"], "text": f"instead {nonce()}", "busy": "INTERRUPT"}
        sent = await client.ok(SEND, variables, token=token)
        assert sent["sendMessage"]["queued"] is True
        waits = 0

        def second_wait(event: dict[str, Any]) -> bool:
            nonlocal waits
            waits += is_status(event, "WAITING")
            return waits == 2

        events = await sub.until(second_wait)
    assert statuses(events) == ["INTERRUPTING", "WAITING", "PENDING", "RUNNING", "WAITING"]


async def test_an_interrupt_whose_announcement_was_lost_still_stops_the_run(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    """The row is the truth: a worker that missed the INTERRUPTING announcement
    (a broadcast blip) finds it at its next heartbeat and stops the run."""
    chat = await create_chat(client, token, f"/slow 200\n/reply {'word ' * 40}{nonce()}")
    chat_id = chat_uuid(chat["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))
        # What interruptChat writes, without its announcement.
        await Chat.filter(id=chat_id).update(status=ChatStatus.INTERRUPTING)
        events = await sub.until(lambda e: is_status(e, "WAITING"))
    assert statuses(events) == ["WAITING"], events
    assert [e for e in events if is_message(e, "ASSISTANT")]  # what it had streamed
    row = await Chat.get(id=chat_id)
    assert (row.status, row.worker_id) == (ChatStatus.WAITING, None)


async def test_an_interrupt_announced_as_the_turn_ends_does_not_cut_its_end(
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """interruptChat commits INTERRUPTING, the turn ends (WAITING) before the worker
    hears of it, then the announcement arrives: the worker must not cancel the
    ended turn half-way through announcing its end."""
    daemon = app.state.daemon
    checked = asyncio.Event()
    check_run = type(daemon)._check_run

    async def noting(self: Any, running: Any, announced: str | None) -> None:
        await check_run(self, running, announced)
        if announced == ChatStatus.INTERRUPTING:
            checked.set()

    original = ChatAnnouncer.status

    async def late_interrupt(self: ChatAnnouncer, *args: Any) -> None:
        _, chat_id, status, *signed = args
        # The run's own WAITING (signed with its worker id) as it ends.
        if status == ChatStatus.WAITING and any(signed) and not checked.is_set():
            await app.state.event_hub.publish(
                f"chat:{chat_id}", StatusChanged(chat_id, ChatStatus.INTERRUPTING)
            )
            await asyncio.wait_for(checked.wait(), 10)
            await asyncio.sleep(0)  # a cancellation, if any, lands here
        await original(self, *args)

    monkeypatch.setattr(type(daemon), "_check_run", noting)
    monkeypatch.setattr(ChatAnnouncer, "status", late_interrupt)
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f"/slow 50\nshort {nonce()}")
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: is_status(e, "WAITING"))
    assert checked.is_set()
    assert (await Chat.get(id=chat_uuid(chat["id"]))).status is ChatStatus.WAITING


async def test_a_chat_whose_worker_died_while_interrupting_ends_waiting(
    app: Starlette, live_server: str, client: GraphQLClient, token: str
) -> None:
    """Nothing runs a chat whose worker is gone: its interrupt is over (WAITING),
    announced, rather than INTERRUPTING for ever."""
    chat = await create_chat(client, token, f"hello {nonce()}")
    chat_id = chat_uuid(chat["id"])
    await chat_settled(chat_id)
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(replayed)
        # As a run being interrupted leaves it when its worker's process dies:
        # the interrupt was announced, then the worker stopped beating.
        owner_id = (await Chat.get(id=chat_id)).owner_id  # type: ignore[attr-defined]
        await ChatAnnouncer(app.state.event_hub).status(owner_id, chat_id, "interrupting")
        seen = await sub.until(lambda e: typename(e, "StatusChanged"))
        assert statuses(seen) == ["INTERRUPTING"], seen
        stale = datetime.now(UTC) - timedelta(hours=1)
        await Chat.filter(id=chat_id).update(
            status=ChatStatus.INTERRUPTING, worker_id=uuid.uuid4(), heartbeat_at=stale
        )
        events = await sub.until(lambda e: typename(e, "StatusChanged"))
    assert statuses(events) == ["WAITING"], events
    row = await Chat.get(id=chat_id)
    assert (row.status, row.worker_id) == (ChatStatus.WAITING, None)


# -- REQUIRES_ACTION while a question waits --------------------------------------------


async def test_a_question_leaves_the_chat_requiring_action_until_the_user_answers(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    chat = await create_chat(client, token, f"{ASK}\n{nonce()}")
    chat_id = chat_uuid(chat["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await sub.until(
            lambda e: typename(e, "StatusChanged") and e["status"] not in {"PENDING", "RUNNING"}
        )
        assert statuses(events)[-1] == "REQUIRES_ACTION", events
        state = await read_chat(client, token, chat["id"])
        assert state["status"] == "REQUIRES_ACTION"
        assert state["lastError"] is None
        listed = await client.ok(CHATS_BY_QUERY, {"q": "status:requires_action"}, token=token)
        assert [c["id"] for c in listed["chats"]["nodes"]] == [chat["id"]]
        # Interrupting has no run to stop: the question still waits.
        kept = await client.ok(INTERRUPT, {"id": chat["id"]}, token=token)
        assert kept["interruptChat"]["status"] == "REQUIRES_ACTION"

        # The answer is the user's next message: accepted at once, not queued.
        sent = await client.ok(SEND, {"id": chat["id"], "text": f"Blue {nonce()}"}, token=token)
        assert sent["sendMessage"]["queuedMessage"] is None
        assert sent["sendMessage"]["message"] is not None
        after = await sub.until(settled)
    assert statuses(after) == ["PENDING", "RUNNING", "WAITING"], after
    assert (await Chat.get(id=chat_id)).status is ChatStatus.WAITING


async def test_a_message_queued_before_the_question_is_its_answer(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    """A message queued during the turn runs next, as after any turn: the question
    is answered by it, and the chat does not sit in REQUIRES_ACTION."""
    chat = await create_chat(client, token, f"/slow 100\n{ASK}\n{nonce()}")
    chat_id = chat_uuid(chat["id"])
    await chat_settled(chat_id, ChatStatus.RUNNING)
    sent = await client.ok(SEND, {"id": chat["id"], "text": f"Red {nonce()}"}, token=token)
    assert sent["sendMessage"]["queuedMessage"] is not None

    async def answered() -> bool:
        return len(await messages_of(chat_id, MessageRole.USER)) == 2

    await eventually(answered)
    await chat_settled(chat_id)
    assert not await ChatQueuedMessage.filter(chat_id=chat_id).exists()
