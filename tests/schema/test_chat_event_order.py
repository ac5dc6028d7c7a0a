"""``chatEvents`` around a step's end and around a resync: what a subscriber sees.

In-process: the subscription runs through the schema as the server runs it
(graphql-core with agentgql's executor, the app's memory hub, real Postgres),
and the test plays the daemon itself, so each interleaving is driven step by
step instead of raced. Before a subscriber reads on, everything published is
in its queue (a marker published last has reached another subscriber).

- A step's delta never follows that step's MessageCreated, whether the message
  is read by a new subscriber's replay or by a lagging one's live read, with the
  running step in this process or on another replica; the next step's deltas
  still arrive.
- After a resync the stream sends the chat's current status again (a status
  event dropped with the backlog would otherwise stay the last one seen).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage, User
from db.vocabulary import ChatStatus, MessageRole
from events import live_steps
from events.announcer import ChatAnnouncer
from events.channels import chat_channel
from events.hub import EventHub, Subscription
from events.payloads import WorkAvailable
from resolvers.context import RequestContext
from schema.build import build_schema
from tests.daemon.live import chat_uuid, create_chat, message_gid
from tests.harness import GraphQLClient

EVENTS = """
subscription($id: ID!) {
  chatEvents(chatId: $id) {
    __typename
    ... on StatusChanged { status }
    ... on PartDelta { partIndex part { ... on TextPart { text } } }
    ... on MessageCreated { message { id role } }
    ... on QueueUpdated { queuedMessages { id } }
    ... on Resync { reason }
  }
}"""

Event = dict[str, Any]


class Stream:
    """One ``chatEvents`` subscription, read one event at a time."""

    def __init__(self, results: AsyncGenerator[Any, None]) -> None:
        self.results = results

    async def next(self) -> Event:
        result = await asyncio.wait_for(anext(self.results), 10)
        assert result.errors is None, result.errors
        assert result.data is not None
        event: Event = result.data["chatEvents"]
        return event

    async def until(self, done: Callable[[Event], bool]) -> list[Event]:
        seen: list[Event] = []
        while not seen or not done(seen[-1]):
            seen.append(await self.next())
        return seen


def kind(name: str) -> Callable[[Event], bool]:
    return lambda event: event["__typename"] == name


def delta(text: str) -> Callable[[Event], bool]:
    return lambda event: kind("PartDelta")(event) and event["part"] == {"text": text}


class Worker:
    """Plays the daemon's part for one chat: deltas, durable messages, statuses."""

    def __init__(self, app: Starlette, chat: Chat, owner: User, *, here: bool) -> None:
        self.events: ChatAnnouncer = app.state.announcer
        self.hub: EventHub = app.state.event_hub
        self.chat = chat
        self.owner = owner
        self.here = here  # the step runs in this process (else on another replica)
        self.probe: Subscription | None = None

    def begin_step(self) -> None:
        if self.here:
            live_steps.begin(self.chat.id)

    async def delta(self, text: str) -> None:
        part = {"type": "text", "text": text}
        seq = live_steps.next_seq()
        step = live_steps.current(self.chat.id) if self.here else None
        if step is not None:
            step.append(0, part, seq)
        await self.events.part(self.chat.id, 0, part, seq)

    async def persist(self, text: str) -> ChatMessage:
        """The step's durable message, committed but not announced yet."""
        return await ChatMessage.create(
            chat_id=self.chat.id, role=MessageRole.ASSISTANT, parts=[{"type": "text", "text": text}]
        )

    async def announce(self, row: ChatMessage) -> None:
        await self.events.message(self.chat.id, row.id)
        if self.here:
            live_steps.end(self.chat.id)

    async def status(self, status: ChatStatus) -> None:
        await Chat.filter(id=self.chat.id).update(status=status)
        await self.events.status(self.owner.id, self.chat.id, status.value)

    async def delivered(self) -> None:
        """Everything published so far is in every local subscriber's queue."""
        assert self.probe is not None
        marker = WorkAvailable(uuid.uuid4())  # off its channel: every stream ignores it
        await self.hub.publish(chat_channel(self.chat.id), marker)
        while await self.probe.get(timeout=10) != marker:
            pass


@asynccontextmanager
async def following(
    app: Starlette, client: GraphQLClient, token: str, *, here: bool = True
) -> AsyncIterator[tuple[Worker, Stream]]:
    """A fresh RUNNING chat, its worker, and a ``chatEvents`` stream not started yet."""
    created = await create_chat(client, token, f"order {uuid.uuid4().hex[:6]}")
    chat_id = chat_uuid(created["id"])
    await Chat.filter(id=chat_id).update(status=ChatStatus.RUNNING)
    chat = await Chat.get(id=chat_id).prefetch_related("owner")
    worker = Worker(app, chat, chat.owner, here=here)
    context = RequestContext(request_id="order", viewer=chat.owner, events=worker.events)
    hub = worker.hub
    async with hub.subscribe(chat_channel(chat.id), max_queue=100_000) as probe:
        worker.probe = probe
        results = await build_schema().subscribe(
            EVENTS, {"id": created["id"]}, context_value=context
        )
        assert isinstance(results, AsyncGenerator), results
        try:
            yield worker, Stream(results)
        finally:
            await results.aclose()
            live_steps.end(chat.id)


@pytest.fixture(scope="module")
def client(gql: GraphQLClient) -> GraphQLClient:
    return gql


def deltas_after_message(events: list[Event], message_id: str) -> list[Event]:
    (at,) = [
        n
        for n, e in enumerate(events)
        if kind("MessageCreated")(e) and e["message"]["id"] == message_id
    ]
    return [e for e in events[at:] if kind("PartDelta")(e)]


@pytest.mark.parametrize("here", [True, False], ids=["step-in-this-process", "step-elsewhere"])
async def test_a_step_ending_as_a_client_subscribes_sends_no_delta_after_its_message(
    app: Starlette, client: GraphQLClient, admin_token: str, here: bool
) -> None:
    async with following(app, client, admin_token, here=here) as (worker, stream):
        worker.begin_step()
        await worker.delta("Hello")  # before anyone listens
        assert await stream.next() == {"__typename": "StatusChanged", "status": "RUNNING"}

        # The subscriber is past its snapshot of the step and before its read of
        # the messages: the step's last delta, its message, the next step.
        await worker.delta(" world")
        row = await worker.persist("Hello world")
        await worker.announce(row)
        worker.begin_step()
        await worker.delta("Next")
        await worker.delivered()

        events = await stream.until(delta("Next"))
    gid = message_gid(row.id)
    assert deltas_after_message(events, gid) == [events[-1]]  # only the next step's
    texts = [e["part"]["text"] for e in events if kind("PartDelta")(e)]
    assert texts == (["Hello", "Next"] if here else ["Next"])
    assert [e["message"]["id"] for e in events if kind("MessageCreated")(e)][-1] == gid


@pytest.mark.parametrize("here", [True, False], ids=["step-in-this-process", "step-elsewhere"])
async def test_a_lagging_subscriber_reading_ahead_sends_no_delta_after_its_message(
    app: Starlette, client: GraphQLClient, admin_token: str, here: bool
) -> None:
    async with following(app, client, admin_token, here=here) as (worker, stream):
        await stream.until(kind("QueueUpdated"))
        # Two steps end before the subscriber reads on: announcing the first, it
        # reads both messages, ahead of the second step's delta and announcement.
        worker.begin_step()
        await worker.delta("one")
        first = await worker.persist("one")
        await worker.announce(first)
        worker.begin_step()
        await worker.delta("two")
        second = await worker.persist("two")
        await worker.announce(second)
        worker.begin_step()
        await worker.delta("three")
        await worker.delivered()

        events = await stream.until(delta("three"))
    assert [e["__typename"] for e in events] == [
        "PartDelta",
        "MessageCreated",
        "MessageCreated",
        "PartDelta",
    ]
    assert [e["part"]["text"] for e in events if kind("PartDelta")(e)] == ["one", "three"]
    assert [e["message"]["id"] for e in events if kind("MessageCreated")(e)] == [
        message_gid(first.id),
        message_gid(second.id),
    ]


async def test_after_a_resync_the_stream_sends_the_current_status(
    app: Starlette, client: GraphQLClient, admin_token: str
) -> None:
    async with following(app, client, admin_token) as (worker, stream):
        replay = await stream.until(kind("QueueUpdated"))
        assert replay[0] == {"__typename": "StatusChanged", "status": "RUNNING"}

        # The turn ends while this subscriber is too far behind: its backlog,
        # the WAITING status with it, is dropped for one resync.
        worker.begin_step()
        await worker.delta("done")
        row = await worker.persist("done")
        await worker.announce(row)
        await worker.status(ChatStatus.WAITING)
        for _ in range(worker.hub.queue_size):
            await worker.delta(".")
        await worker.delivered()

        events = await stream.until(kind("QueueUpdated"))
    assert events[0] == {"__typename": "Resync", "reason": "overflow"}
    assert [e["status"] for e in events if kind("StatusChanged")(e)] == ["WAITING"]
    created = [e["message"]["id"] for e in events if kind("MessageCreated")(e)]
    assert created == [message_gid(row.id)]
    assert (await Chat.get(id=worker.chat.id)).status is ChatStatus.WAITING
