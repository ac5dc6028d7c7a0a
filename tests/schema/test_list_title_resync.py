"""``chatListEvents`` and ``titleChanges`` after events were lost.

Events are lost when the broadcast backend goes away (the hub reconnects and
resyncs every subscriber) or when a subscriber falls too far behind (its queue
overflows into one resync). Neither stream may then go on as if nothing
happened: a chat that finished meanwhile would stay RUNNING in every open list.

- ``chatListEvents`` sends ``RESYNC`` (``chat: null``); the client refetches its
  list, and the stream goes on.
- ``titleChanges`` sends a ``Resync``; for one chat it then sends the chat's
  current title, so the client converges without a refetch.

The app broadcasts over a private redis-server that the tests kill and restart
(real uvicorn, real WebSockets). The overflow tests drive the subscription
in-process through the schema, not reading it while the owner's channel fills.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, User
from db.vocabulary import ChatListEventKind, ChatStatus
from events.announcer import ChatAnnouncer
from events.channels import owner_channel
from events.hub import EventHub, Subscription
from events.payloads import WorkAvailable
from resolvers.context import RequestContext
from schema.build import build_schema
from tests.conftest import make_settings
from tests.daemon.live import (
    CHAT_LIST_EVENTS,
    TITLE_CHANGES,
    GraphQLSocket,
    chat_uuid,
    create_chat,
    eventually,
    http_client,
    new_user,
    nonce,
    running_app,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient
from tests.private_redis import RedisServer

CHATS = "query { chats(first: 50) { nodes { id status } } }"
RENAME = 'mutation($id: ID!) { updateChat(input: {id: $id, title: "Renamed live"}) { id } }'

Event = dict[str, Any]


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> AsyncIterator[Starlette]:
    """No daemon: the tests set chat statuses and titles themselves."""
    settings = make_settings(database_url, tmp_path_factory, broadcast_url=redis_server.url)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
        yield gql


def owner_events(app: Starlette) -> ChatAnnouncer:
    events: ChatAnnouncer = app.state.announcer
    return events


async def finish_unannounced(chat_ids: list[uuid.UUID]) -> None:
    """The chats' turns end while their announcements cannot be delivered."""
    await Chat.filter(id__in=chat_ids).update(status=ChatStatus.WAITING)


# -- a broadcast outage -----------------------------------------------------------------


async def test_after_an_outage_the_chat_list_says_resync_and_a_refetch_shows_the_truth(
    backend_up: None,
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    redis_server: RedisServer,
) -> None:
    token = await new_user(client, "lister")
    chats = [await create_chat(client, token, f"busy {n} {nonce()}") for n in range(5)]
    ids = [chat_uuid(chat["id"]) for chat in chats]
    await Chat.filter(id__in=ids).update(status=ChatStatus.RUNNING)
    async with GraphQLSocket.open(live_server, token) as socket:
        lists = [await socket.subscribe(CHAT_LIST_EVENTS, field="chatListEvents") for _ in range(3)]
        warmup = await create_chat(client, token, f"warm up {nonce()}")
        for sub in lists:  # every subscription is live before the outage
            await sub.until(lambda e: e["kind"] == "CREATED" and e["chat"]["id"] == warmup["id"])

        await redis_server.kill()
        await finish_unannounced(ids)
        await redis_server.start()

        for sub in lists:
            seen = await sub.until(lambda e: e["kind"] == "RESYNC", timeout=30)
            assert seen[-1] == {"kind": "RESYNC", "chat": None}
            assert {e["chat"]["id"] for e in seen[:-1]} <= {warmup["id"]}  # its status, if any
        # What a client does on RESYNC: refetch its list. No chat is left RUNNING.
        listed = (await client.ok(CHATS, token=token))["chats"]["nodes"]
        assert {c["id"]: c["status"] for c in listed if c["id"] in {x["id"] for x in chats}} == {
            chat["id"]: "WAITING" for chat in chats
        }

        # The stream goes on after its RESYNC.
        after = await create_chat(client, token, f"after {nonce()}")
        for sub in lists:
            await sub.until(lambda e: e["kind"] == "CREATED" and e["chat"]["id"] == after["id"])


async def test_after_an_outage_title_changes_say_resync_and_one_chat_gets_its_title(
    backend_up: None,
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    redis_server: RedisServer,
) -> None:
    token = await new_user(client, "titles")
    chat = await create_chat(client, token, f"titled {nonce()}")
    async with GraphQLSocket.open(live_server, token) as socket:
        every = await socket.subscribe(TITLE_CHANGES, {"id": None}, field="titleChanges")
        one = await socket.subscribe(TITLE_CHANGES, {"id": chat["id"]}, field="titleChanges")
        await client.ok(RENAME, {"id": chat["id"]}, token=token)
        for sub in (every, one):  # both live before the outage
            assert await sub.next() == {
                "__typename": "TitleChange",
                "chatId": chat["id"],
                "title": "Renamed live",
            }

        await redis_server.kill()
        # Renamed while its announcement has nowhere to go.
        await Chat.filter(id=chat_uuid(chat["id"])).update(title="Renamed in the outage")
        await redis_server.start()

        lost = await every.next(timeout=30)
        assert lost["__typename"] == "Resync"
        assert lost["resyncChatId"] is None
        assert lost["reason"]
        assert [await one.next(timeout=30), await one.next()] == [
            {"__typename": "Resync", "resyncChatId": chat["id"], "reason": lost["reason"]},
            {"__typename": "TitleChange", "chatId": chat["id"], "title": "Renamed in the outage"},
        ]

        # Both streams go on.
        await client.ok(RENAME, {"id": chat["id"]}, token=token)
        for sub in (every, one):
            event = await sub.next(timeout=30)
            assert (event["__typename"], event["title"]) == ("TitleChange", "Renamed live")


# -- a subscriber that fell behind --------------------------------------------------------


class Stream:
    """One subscription through the schema, read only when the test says so."""

    def __init__(self, results: AsyncGenerator[Any, None], field: str) -> None:
        self.results = results
        self.field = field

    async def next(self) -> Event:
        try:
            result = await asyncio.wait_for(anext(self.results), 10)
        except TimeoutError:
            raise AssertionError(f"no {self.field} event within 10s") from None
        assert result.errors is None, result.errors
        event: Event = result.data[self.field]
        return event


class Owner:
    """Publishes on one owner's channel; ``delivered`` proves it reached every queue."""

    def __init__(self, app: Starlette, user: User, probe: Subscription) -> None:
        self.events = owner_events(app)
        self.hub: EventHub = app.state.event_hub
        self.user = user
        self.probe = probe

    @property
    def channel(self) -> str:
        return owner_channel(self.user.id)

    async def change(self, chat_id: uuid.UUID, kind: ChatListEventKind) -> None:
        await self.events.list_change(self.user.id, chat_id, kind.value)

    async def delivered(self) -> None:
        marker = WorkAvailable(uuid.uuid4())  # off its channel: every stream ignores it
        await self.hub.publish(self.channel, marker)
        while await self.probe.get(timeout=10) != marker:
            pass

    async def flood(self, chat_id: uuid.UUID) -> None:
        """More status changes than a subscriber's queue holds."""
        for _ in range(self.hub.queue_size + 1):
            await self.change(chat_id, ChatListEventKind.STATUS_CHANGED)
        await self.delivered()


@asynccontextmanager
async def subscribed(
    app: Starlette, client: GraphQLClient, document: str, field: str, chat: bool = False
) -> AsyncIterator[tuple[Owner, uuid.UUID, Stream]]:
    """A fresh owner with one chat, and a started subscription that has seen an event."""
    token = await new_user(client, "behind")
    made = await create_chat(client, token, f"behind {nonce()}")
    chat_id = chat_uuid(made["id"])
    row = await Chat.get(id=chat_id).prefetch_related("owner")
    hub: EventHub = app.state.event_hub
    async with hub.subscribe(owner_channel(row.owner.id), max_queue=100_000) as probe:
        owner = Owner(app, row.owner, probe)
        context = RequestContext(request_id="behind", viewer=row.owner, events=owner.events)
        variables = {"id": made["id"]} if chat else None
        results = await build_schema().subscribe(document, variables, context_value=context)
        assert isinstance(results, AsyncGenerator), results
        stream = Stream(results, field)
        try:
            first = asyncio.ensure_future(stream.next())
            await eventually(lambda: _ready(hub, owner.channel))
            await Chat.filter(id=chat_id).update(title="Before the flood")
            await owner.change(chat_id, ChatListEventKind.TITLE_CHANGED)
            await first
            yield owner, chat_id, stream
        finally:
            await results.aclose()


async def _ready(hub: EventHub, channel: str) -> bool:
    return hub.channels.get(channel, 0) == 2  # the probe and the subscription


async def test_a_lagging_chat_list_subscriber_gets_resync_then_live_events(
    backend_up: None, app: Starlette, client: GraphQLClient
) -> None:
    async with subscribed(app, client, CHAT_LIST_EVENTS, "chatListEvents") as (
        owner,
        chat_id,
        stream,
    ):
        await Chat.filter(id=chat_id).update(status=ChatStatus.RUNNING)
        await owner.flood(chat_id)  # the last of them would have said RUNNING
        assert await stream.next() == {"kind": "RESYNC", "chat": None}

        await Chat.filter(id=chat_id).update(status=ChatStatus.WAITING)
        await owner.change(chat_id, ChatListEventKind.STATUS_CHANGED)
        event = await stream.next()
    assert event["kind"] == "STATUS_CHANGED"
    assert event["chat"]["status"] == "WAITING"


@pytest.mark.parametrize("one_chat", [True, False], ids=["one-chat", "all-chats"])
async def test_a_lagging_title_subscriber_gets_resync_and_one_chat_its_current_title(
    backend_up: None, app: Starlette, client: GraphQLClient, one_chat: bool
) -> None:
    async with subscribed(app, client, TITLE_CHANGES, "titleChanges", chat=one_chat) as (
        owner,
        chat_id,
        stream,
    ):
        await Chat.filter(id=chat_id).update(title="Lost in the flood")
        await owner.change(chat_id, ChatListEventKind.TITLE_CHANGED)
        await owner.flood(chat_id)
        resync = await stream.next()
        assert resync["__typename"] == "Resync"
        assert resync["reason"] == "overflow"
        if one_chat:
            assert resync["resyncChatId"] is not None
            assert chat_uuid(resync["resyncChatId"]) == chat_id
            current = await stream.next()
            assert current["title"] == "Lost in the flood"
            assert chat_uuid(current["chatId"]) == chat_id
        else:
            assert resync["resyncChatId"] is None

        await Chat.filter(id=chat_id).update(title="After the flood")
        await owner.change(chat_id, ChatListEventKind.TITLE_CHANGED)
        event = await stream.next()
    assert (event["__typename"], event["title"]) == ("TitleChange", "After the flood")
