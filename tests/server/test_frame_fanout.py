"""One live event, many subscribers: one encode per selection, frames written directly.

Real uvicorn and WebSockets, no daemon (only the events published here flow).
Live events that need no read reach every parked subscriber without its own
generator: the frames are exactly what Strawberry sends (same text, each with
its own operation id), in publish order with the events that do need a read,
and an unsubscribed operation gets nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import orjson
import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage
from db.vocabulary import ChatStatus, MessageRole
from events.announcer import ChatAnnouncer
from resolvers import global_id
from server.frame_fanout import FanoutCounts, SocketLane
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
from tests.harness import GraphQLClient

WATCH = """
subscription($id: ID!) {
  chatEvents(chatId: $id) {
    __typename
    ... on StatusChanged { status }
    ... on PartDelta { partIndex part { __typename ... on TextPart { text } } }
    ... on MessageCreated { message { id role } }
  }
}"""


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    settings = make_settings(database_url, tmp_path_factory)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        yield gql


async def replayed(sub: Subscription) -> None:
    await sub.until(lambda e: e["__typename"] == "QueueUpdated")


async def last_frames(sub: Subscription, count: int) -> list[str]:
    """The raw text of the subscriber's next ``count`` frames (none follow them)."""
    for _ in range(count):
        await sub.next()
    return [t for t in sub.socket.frames if orjson.loads(t).get("id") == sub.id][-count:]


async def test_one_encode_per_event_and_frames_as_strawberry_sends_them(
    app: Starlette, live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client, "fanout")
    created = await create_chat(client, token, "fan out")
    chat = await Chat.get(id=chat_uuid(created["id"])).prefetch_related("owner")
    owner = chat.owner.id
    events: ChatAnnouncer = app.state.announcer
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(GraphQLSocket.open(live_server, token))
            for _ in range(3)
        ]
        subs = [
            await socket.subscribe(WATCH, {"id": created["id"]}, field="chatEvents")
            for socket in sockets
            for _ in range(2)
        ]
        for sub in subs:
            await replayed(sub)
        slow_text = sockets[0].frames[0]  # Strawberry's own frame (the replayed status)
        encodes, direct = FanoutCounts.encodes, FanoutCounts.direct_frames

        await events.status(owner, chat.id, ChatStatus.RUNNING)
        for seq in (1, 2, 3):
            await events.part(chat.id, 0, {"type": "text", "text": f"{seq} "}, seq)
        texts = [await last_frames(sub, 4) for sub in subs]

        assert FanoutCounts.encodes - encodes == 4  # four events, one selection
        assert FanoutCounts.direct_frames - direct == 4 * len(subs)  # no generator ran
        for sub, got in zip(subs, texts, strict=True):
            frames = [orjson.loads(text) for text in got]
            assert [f["id"] for f in frames] == [sub.id] * 4
            events_got = [f["payload"]["data"]["chatEvents"] for f in frames]
            assert events_got[0] == {"__typename": "StatusChanged", "status": "RUNNING"}
            assert [e["part"]["text"] for e in events_got[1:]] == ["1 ", "2 ", "3 "]
            # The same layout and extensions as the frames Strawberry sends.
            assert all(
                text == orjson.dumps(f).decode() for text, f in zip(got, frames, strict=True)
            )
            assert all(
                f["payload"].keys() == orjson.loads(slow_text)["payload"].keys() for f in frames
            )
        assert len({text.split(",", 1)[1] for got in texts for text in got[:1]}) == 1


async def test_direct_frames_keep_order_with_read_events_and_stop_on_unsubscribe(
    app: Starlette, live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client, "ordered")
    created = await create_chat(client, token, "in order")
    chat = await Chat.get(id=chat_uuid(created["id"])).prefetch_related("owner")
    owner = chat.owner.id
    events: ChatAnnouncer = app.state.announcer
    async with GraphQLSocket.open(live_server, token) as socket:
        leaving, staying = [
            await socket.subscribe(WATCH, {"id": created["id"]}, field="chatEvents")
            for _ in range(2)
        ]
        for sub in (leaving, staying):
            await replayed(sub)
        for round_ in range(5):
            row = await ChatMessage.create(
                chat=chat, role=MessageRole.ASSISTANT, parts=[{"type": "text", "text": "x"}]
            )
            await events.message(chat.id, row.id)  # needs a read: the generator's path
            status = ChatStatus.RUNNING if round_ % 2 == 0 else ChatStatus.WAITING
            await events.status(owner, chat.id, status)  # direct, right after
            for sub in (leaving, staying):
                created_event = await sub.next()
                assert created_event["__typename"] == "MessageCreated"
                assert global_id.decode_bigint(created_event["message"]["id"], "Message") == row.id
                assert await sub.next() == {"__typename": "StatusChanged", "status": status.name}

        await leaving.stop()
        # The server reads a socket's messages in order: once a later subscription
        # replayed, the complete was handled.
        await replayed(await socket.subscribe(WATCH, {"id": created["id"]}, field="chatEvents"))
        await events.history_reset(chat.id)
        await events.status(owner, chat.id, ChatStatus.WAITING)
        await staying.until(lambda e: e == {"__typename": "StatusChanged", "status": "WAITING"})
        await asyncio.sleep(0)  # (the reader task has filed everything before it)
        after_stop = [m for m in [leaving.queue.get_nowait() for _ in range(leaving.queue.qsize())]]
        assert all(m.get("type") == "complete" for m in after_stop), after_stop


async def test_a_failing_direct_delivery_still_reaches_the_subscriber(
    app: Starlette, live_server: str, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status a failed lane had already taken as delivered is not lost: the
    event goes through the generator as if it had been queued."""
    token = await new_user(client, "fallback")
    created = await create_chat(client, token, "falls back")
    chat = await Chat.get(id=chat_uuid(created["id"])).prefetch_related("owner")
    events: ChatAnnouncer = app.state.announcer

    def broken(*args: object) -> bool:
        raise RuntimeError("the lane broke")

    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(WATCH, {"id": created["id"]}, field="chatEvents")
        await replayed(sub)
        monkeypatch.setattr(SocketLane, "try_deliver", broken)
        await events.status(chat.owner.id, chat.id, ChatStatus.RUNNING)
        assert await sub.next() == {"__typename": "StatusChanged", "status": "RUNNING"}
