"""One event, many subscribers: each distinct selection executes once.

Real uvicorn and WebSockets, no daemon (only the events published here flow).
Subscribers of one chat with the same document, variables and viewer share the
event's reads and its execution: the SQL sent for an announced message is the
same for five subscribers as for one, and the selection runs once per distinct
document. A subscriber with another selection gets its own frame, and a result
with errors is never shared (each subscriber executes and gets its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import pytest
from graphql.execution.executor import Executor
from starlette.applications import Starlette

from db.models import Chat, ChatMessage, User
from db.vocabulary import ChatErrorKind, MessageRole
from events.announcer import ChatAnnouncer
from events.payloads import ChatErrorInfo
from resolvers import chat_event_rows
from resolvers.context import RequestContext
from schema import subscription
from schema.build import build_schema
from schema.engine.graphql_core_compat import sub_field_cache
from tests.conftest import make_settings
from tests.daemon.live import (
    GraphQLSocket,
    Subscription,
    chat_uuid,
    create_chat,
    http_client,
    new_user,
    running_app,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient, counted_queries

SAME = """
subscription($id: ID!) {
  chatEvents(chatId: $id) {
    __typename
    ... on StatusChanged { status }
    ... on MessageCreated { cursor message { id role createdBy { username } } }
    ... on ChatFailed { error { kind message } }
  }
}"""
OTHER = """
subscription($id: ID!) {
  chatEvents(chatId: $id) {
    __typename
    ... on MessageCreated { chatId message { id parts { ... on TextPart { text } } } }
  }
}"""


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """This module's own app (it replaces the shared one), without the daemon."""
    settings = make_settings(database_url, tmp_path_factory)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        yield gql


@contextmanager
def executions(root_type: type) -> Iterator[list[Any]]:
    """Every execution of a selection set on a root of ``root_type``."""
    seen: list[Any] = []
    original = Executor.execute_operation

    def counted(self: Executor, serially: bool | None = None) -> Any:
        if isinstance(self.root_value, root_type):
            seen.append(self.root_value)
        return original(self, serially)

    Executor.execute_operation = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Executor.execute_operation = original  # type: ignore[method-assign]


async def replayed(sub: Subscription) -> None:
    """Skip what a new subscription replays (it ends with the queue)."""
    await sub.until(lambda e: e["__typename"] == "QueueUpdated")


async def raw_next(sub: Subscription) -> dict[str, Any]:
    """The next ``next`` frame's payload, errors included."""
    message = await asyncio.wait_for(sub.queue.get(), 10)
    assert message["type"] == "next", message
    payload: dict[str, Any] = message["payload"]
    return payload


class Chatroom:
    """A chat whose events this test publishes itself."""

    def __init__(self, app: Starlette, chat: Chat, author: User) -> None:
        self.events: ChatAnnouncer = app.state.announcer
        self.chat = chat
        self.author = author

    async def announce(self, role: MessageRole, text: str, sent: list[str]) -> None:
        """Write a message and announce it; ``sent`` keeps only the server's SQL."""
        before = len(sent)
        author = self.author if role is MessageRole.USER else None
        row = await ChatMessage.create(
            chat=self.chat, role=role, parts=[{"type": "text", "text": text}], created_by=author
        )
        if role is MessageRole.ASSISTANT:
            await Chat.filter(id=self.chat.id).update(last_assistant_message_id=row.id)
        del sent[before:]
        await self.events.message(self.chat.id, row.id)

    async def settle(self, subs: list[Subscription]) -> None:
        """An event after the messages that needs no read: every stream has finished
        the work of the events before it (reads, read marks) once it delivered this
        one. (Not a status: a stream skips one equal to the status it holds.)"""
        await self.events.history_reset(self.chat.id)
        for sub in subs:
            await sub.until(lambda e: e["__typename"] == "HistoryReset")


async def exchange(
    room: Chatroom, subs: list[Subscription], sent: list[str]
) -> list[list[dict[str, Any]]]:
    """A user message and a reply; the MessageCreated frames of each subscriber."""
    frames: list[list[dict[str, Any]]] = [[] for _ in subs]
    for role, text in ((MessageRole.USER, "hello there"), (MessageRole.ASSISTANT, "hi back")):
        await room.announce(role, text, sent)
        for got, sub in zip(frames, subs, strict=True):
            got.append(await sub.next())
    await room.settle(subs)
    return frames


async def test_subscribers_with_equal_selections_share_one_execution_per_event(
    app: Starlette, live_server: str, client: GraphQLClient
) -> None:
    signed_up = await client.ok(SIGN_UP, {"u": "sharer", "p": PASSWORD})
    token = str(signed_up["signUp"]["token"])
    created = await create_chat(client, token, "share this")
    chat = await Chat.get(id=chat_uuid(created["id"]))
    room = Chatroom(app, chat, await User.get(username="sharer"))
    variables = {"id": created["id"]}

    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(GraphQLSocket.open(live_server, token))]
        first = await sockets[0].subscribe(SAME, variables, field="chatEvents")
        await replayed(first)
        with (
            counted_queries() as alone_sql,
            executions(chat_event_rows.MessageCreatedEvent) as alone,
        ):
            [alone_frames] = await exchange(room, [first], alone_sql)
        assert len(alone) == 2  # two events, one subscriber
        assert len(alone_sql) >= 3  # the read, the author, the read mark: not a no-op

        # Four subscribers of the same selection (on two connections) and one other.
        sockets.append(await stack.enter_async_context(GraphQLSocket.open(live_server, token)))
        same = [first] + [
            await sockets[n % 2].subscribe(SAME, variables, field="chatEvents") for n in range(3)
        ]
        other = await sockets[1].subscribe(OTHER, variables, field="chatEvents")
        for sub in [*same[1:], other]:
            await replayed(sub)
        with (
            counted_queries() as shared_sql,
            executions(chat_event_rows.MessageCreatedEvent) as runs,
        ):
            frames = await exchange(room, [*same, other], shared_sql)

        assert len(shared_sql) == len(alone_sql), [q[:60] for q in shared_sql]
        assert len(runs) == 4  # two events, two distinct selections
        assert len({id(root) for root in runs}) == 2  # one shared row per event

        *same_frames, other_frames = frames
        assert all(got == same_frames[0] for got in same_frames)
        user, reply = same_frames[0]
        assert user["message"]["createdBy"] == {"username": "sharer"}
        assert user["message"]["role"] == "USER"
        assert reply["message"]["role"] == "ASSISTANT"
        assert reply["message"]["createdBy"] is None
        assert [f["cursor"] for f in same_frames[0]] != [f["cursor"] for f in alone_frames]
        assert set(user) == {"__typename", "cursor", "message"}
        assert [f["message"]["parts"] for f in other_frames] == [
            [{"text": "hello there"}],
            [{"text": "hi back"}],
        ]
        assert all(set(f) == {"__typename", "chatId", "message"} for f in other_frames)
        assert [f["message"]["id"] for f in other_frames] == [
            f["message"]["id"] for f in same_frames[0]
        ]

        # A result with errors is not shared: each subscriber runs the selection.
        with (
            executions(chat_event_rows.ChatFailedEvent) as failed,
            pytest.MonkeyPatch.context() as patch,
        ):
            patch.setattr(subscription, "chat_error", lambda raw: None)  # the field fails
            await room.events.failed(chat.id, ChatErrorInfo(ChatErrorKind.GENERIC, "boom"))
            payloads = [await raw_next(sub) for sub in same]
            assert (await raw_next(other))["data"] == {"chatEvents": {"__typename": "ChatFailed"}}
        assert all(p["data"] is None and p["errors"] for p in payloads)
        assert len(failed) == len(same) + 1


STREAMED = """
subscription($id: ID!) {
  chatEvents(chatId: $id) {
    __typename
    ... on StatusChanged { status }
    ... on PartDelta { partIndex part { __typename ... on TextPart { text } } }
  }
}"""


@contextmanager
def per_event_executors() -> Iterator[tuple[set[Executor], list[Executor]]]:
    """The executors per-event copies are made from, and the latest copy."""
    parents: set[Executor] = set()
    latest: list[Executor] = []
    original = Executor.build_per_event_executor

    def recorded(self: Executor, payload: Any) -> Executor:
        parents.add(self)
        copy = original(self, payload)
        latest[:] = [copy]
        return copy

    Executor.build_per_event_executor = recorded  # type: ignore[method-assign]
    try:
        yield parents, latest
    finally:
        Executor.build_per_event_executor = original  # type: ignore[method-assign]


async def test_a_long_open_subscription_keeps_no_per_event_executor_state(
    app: Starlette, client: GraphQLClient
) -> None:
    """20 000 deltas to one open ``chatEvents``: the executors' memo of collected
    subfields stays a few entries, instead of one per event for as long as the
    subscription is open (it grew by about 2 KB per event)."""
    token = await new_user(client, "longrunner")
    created = await create_chat(client, token, "a long stream")
    chat = await Chat.get(id=chat_uuid(created["id"])).prefetch_related("owner")
    context = RequestContext(
        request_id="long-stream", viewer=chat.owner, events=app.state.announcer
    )
    schema = build_schema()
    events: ChatAnnouncer = app.state.announcer
    total, batch = 20_000, 1000
    with per_event_executors() as (parents, latest):
        stream = await schema.subscribe(STREAMED, {"id": created["id"]}, context_value=context)
        assert isinstance(stream, AsyncGenerator), stream
        try:
            replayed = [(await asyncio.wait_for(anext(stream), 10)).data for _ in range(3)]
            assert [r and r["chatEvents"]["__typename"] for r in replayed] == [
                "StatusChanged",
                "MessageCreated",
                "QueueUpdated",
            ]
            for start in range(0, total, batch):
                for seq in range(start + 1, start + batch + 1):
                    await events.part(chat.id, 0, {"type": "text", "text": f"{seq} "}, seq)
                for _ in range(batch):
                    result = await asyncio.wait_for(anext(stream), 10)
                    assert result.errors is None, result.errors
            assert result.data == {
                "chatEvents": {
                    "__typename": "PartDelta",
                    "partIndex": 0,
                    "part": {"__typename": "TextPart", "text": f"{total} "},
                }
            }
        finally:
            await stream.aclose()
    assert len(parents) == 1
    assert len(sub_field_cache(next(iter(parents)))) <= 4
    assert len(sub_field_cache(latest[0])) <= 4
