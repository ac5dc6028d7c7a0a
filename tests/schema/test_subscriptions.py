"""The owner-wide subscriptions and ``chatEvents``' access rules, end to end.

Real uvicorn, real WebSockets, the daemon running in the app: ``chatListEvents``
follows only the viewer's chats, ``titleChanges`` delivers the automatic and the
regenerated titles, ``regenerateChatTitle`` refuses a second concurrent request,
and ``chatEvents`` treats another user's chat as absent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage
from db.vocabulary import TITLE_LOCK_WORKER, ChatStatus, MessageRole
from resolvers import global_id
from tests.conftest import make_settings
from tests.daemon.live import (
    CHAT_EVENTS,
    CHAT_LIST_EVENTS,
    FAST_DAEMON,
    REGENERATE_TITLE,
    TITLE_CHANGES,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    eventually,
    http_client,
    new_user,
    read_chat,
    running_app,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """This module's own app (it replaces the shared one), with the daemon running."""
    settings = make_settings(database_url, tmp_path_factory, **FAST_DAEMON)
    async with running_app(settings) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})  # the first account
        yield gql


def nonce() -> str:
    return uuid.uuid4().hex[:6]


# -- 12. chatListEvents -----------------------------------------------------------------


async def test_chat_list_events_follow_the_viewers_chats_only(
    live_server: str, client: GraphQLClient
) -> None:
    alice = await new_user(client, "alice")
    bob = await new_user(client, "bob")
    async with GraphQLSocket.open(live_server, alice) as socket:
        sub = await socket.subscribe(CHAT_LIST_EVENTS, field="chatListEvents")
        # A first chat proves the subscription is live before the real test starts.
        warmup = await create_chat(client, alice, f"warm up {nonce()}")
        await sub.until(lambda e: e["chat"]["id"] == warmup["id"] and e["kind"] == "CREATED")
        bobs = await create_chat(client, bob, f"bob keeps this private {nonce()}")
        mine = await create_chat(client, alice, f"plan the garden party {nonce()}")
        events = await sub.until(
            lambda e: e["chat"]["id"] == mine["id"] and e["kind"] == "TITLE_CHANGED"
        )
        await chat_settled(chat_uuid(bobs["id"]))
        await chat_settled(chat_uuid(warmup["id"]))
        # Anything of Bob's would have been delivered by now; drain what is queued.
        while not sub.queue.empty():
            events.append(await sub.next())

    ids = {e["chat"]["id"] for e in events}
    assert bobs["id"] not in ids
    assert ids <= {mine["id"], warmup["id"]}
    kinds = [e["kind"] for e in events if e["chat"]["id"] == mine["id"]]
    # CREATED is announced after the commit; a polling daemon may claim the chat
    # (and announce RUNNING) in between, so only its presence is certain.
    assert "CREATED" in kinds
    assert "STATUS_CHANGED" in kinds
    assert kinds.index("STATUS_CHANGED") < kinds.index("TITLE_CHANGED")
    statuses = [
        e["chat"]["status"]
        for e in events
        if e["chat"]["id"] == mine["id"] and e["kind"] == "STATUS_CHANGED"
    ]
    assert statuses[-1] == "WAITING"


# -- 11. titles -------------------------------------------------------------------------


async def test_automatic_title_then_regeneration_with_one_request_at_a_time(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client, "titler")
    topic = f"plan the garden party menu {nonce()}"
    async with GraphQLSocket.open(live_server, token) as socket:
        titles = await socket.subscribe(TITLE_CHANGES, {"id": None}, field="titleChanges")
        warmup = await create_chat(client, token, f"warm up title {nonce()}")
        await titles.until(lambda e: e["chatId"] == warmup["id"])
        # /slow paces the title requests too (their prompt quotes this message).
        chat = await create_chat(client, token, f"/slow 20\n{topic}")
        fallback = chat["title"]
        assert fallback.startswith("/slow 20 plan")
        automatic = await titles.until(lambda e: e["chatId"] == chat["id"])
        title = automatic[-1]["title"]
        assert title != fallback
        assert title == f"You said: {topic}"
        state = await read_chat(client, token, chat["id"])
        assert state["title"] == title
        assert state["status"] == "WAITING"
        before = len(state["messages"]["nodes"])

        first = asyncio.create_task(client(REGENERATE_TITLE, {"id": chat["id"]}, token=token))

        async def locked() -> bool:
            row = await Chat.get(id=chat_uuid(chat["id"]))
            return row.worker_id == TITLE_LOCK_WORKER

        await eventually(locked, every=0.005)
        second = await client(REGENERATE_TITLE, {"id": chat["id"]}, token=token)
        assert second["errors"][0]["extensions"]["code"] == "CONFLICT", second
        done = await asyncio.wait_for(first, 15)
        assert "errors" not in done, done
        regenerated = done["data"]["regenerateChatTitle"]
        assert regenerated["id"] == chat["id"]
        assert regenerated["title"] not in {title, fallback}
        changed = await titles.until(
            lambda e: e["chatId"] == chat["id"] and e["title"] == regenerated["title"]
        )
        assert changed

    state = await read_chat(client, token, chat["id"])
    assert state["title"] == regenerated["title"]
    assert len(state["messages"]["nodes"]) == before  # its usage row is not history
    row = await Chat.get(id=chat_uuid(chat["id"]))
    assert row.worker_id is None  # the lock is released


async def test_a_running_chats_title_cannot_be_regenerated(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client, "busy")
    chat = await create_chat(client, token, f"/slow 100\n/reply a b c d e f {nonce()}")
    await chat_settled(chat_uuid(chat["id"]), ChatStatus.RUNNING)
    error = await client.error(REGENERATE_TITLE, {"id": chat["id"]}, token=token)
    assert error["extensions"]["code"] == "CONFLICT"
    await client.ok(
        "mutation($id: ID!) { interruptChat(id: $id) { id } }", {"id": chat["id"]}, token=token
    )


# -- chatEvents access ------------------------------------------------------------------


async def first_frame(socket: GraphQLSocket, chat_gid: str, after: str | None = None) -> Any:
    sub = await socket.subscribe(CHAT_EVENTS, {"id": chat_gid, "after": after}, field="chatEvents")
    return await asyncio.wait_for(sub.queue.get(), 10)


async def test_chat_events_of_someone_elses_chat_is_not_found(
    live_server: str, client: GraphQLClient
) -> None:
    owner = await new_user(client, "owner")
    stranger = await new_user(client, "stranger")
    chat = await create_chat(client, owner, f"mine alone {nonce()}")
    async with GraphQLSocket.open(live_server, stranger) as socket:
        frame = await first_frame(socket, chat["id"])
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND", frame
    assert "mine alone" not in str(socket.frames)


async def test_chat_events_with_a_bad_cursor_is_bad_user_input(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client, "cursor")
    chat = await create_chat(client, token, f"cursor test {nonce()}")
    async with GraphQLSocket.open(live_server, token) as socket:
        frame = await first_frame(socket, chat["id"], after="not-a-cursor")
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", frame


async def test_chat_events_needs_a_viewer(live_server: str, client: GraphQLClient) -> None:
    token = await new_user(client, "anon")
    chat = await create_chat(client, token, f"who is there {nonce()}")
    async with GraphQLSocket.open(live_server, None) as socket:
        frame = await first_frame(socket, chat["id"])
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", frame


async def test_a_frame_failing_mid_stream_is_masked_with_a_code(
    live_server: str, client: GraphQLClient, app: Starlette
) -> None:
    token = await new_user(client, "corrupt")
    chat = await create_chat(client, token, f"/reply fine {nonce()}")
    await chat_settled(chat_uuid(chat["id"]))
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: e.get("__typename") == "StatusChanged")
        # A row no reader understands, announced like any new message.
        row = await ChatMessage.create(
            chat_id=chat_uuid(chat["id"]), role=MessageRole.ASSISTANT, parts=[{"type": "?"}]
        )
        await app.state.announcer.message(chat_uuid(chat["id"]), row.id)
        frame = await asyncio.wait_for(sub.queue.get(), 10)
        while frame["type"] == "next" and not frame["payload"].get("errors"):
            frame = await asyncio.wait_for(sub.queue.get(), 10)
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["message"] == "Internal server error", frame
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert errors[0]["extensions"]["requestId"]


@pytest.mark.parametrize("whose", ["someone else's", "no one's"])
async def test_title_changes_of_a_chat_not_yours_is_not_found(
    live_server: str, client: GraphQLClient, whose: str
) -> None:
    """Like chatEvents and gitChanges: no silent stream that never says a word."""
    owner = await new_user(client, "owner")
    stranger = await new_user(client, "stranger")
    chat = await create_chat(client, owner, f"titled {nonce()}")
    chat_id = chat["id"] if whose == "someone else's" else global_id.encode("Chat", uuid.uuid4())
    async with GraphQLSocket.open(live_server, stranger) as socket:
        sub = await socket.subscribe(TITLE_CHANGES, {"id": chat_id}, field="titleChanges")
        frame = await asyncio.wait_for(sub.queue.get(), 10)
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND", frame


async def test_title_changes_of_your_own_chat_starts_quietly(
    live_server: str, client: GraphQLClient
) -> None:
    owner = await new_user(client, "quiet")
    chat = await create_chat(client, owner, f"quiet {nonce()}")
    async with GraphQLSocket.open(live_server, owner) as socket:
        sub = await socket.subscribe(TITLE_CHANGES, {"id": chat["id"]}, field="titleChanges")
        await client.ok(
            'mutation($id: ID!) { updateChat(input: {id: $id, title: "Renamed now"}) { id } }',
            {"id": chat["id"]},
            token=owner,
        )
        seen = [await sub.next()]
        while seen[-1]["title"] != "Renamed now":  # an automatic title may come first
            seen.append(await sub.next())
    assert {event["chatId"] for event in seen} == {chat["id"]}
