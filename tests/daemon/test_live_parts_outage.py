"""Outages in the middle of a step still leave clients with the daemon's text.

The app and its daemon broadcast over a private redis-server. When the test
restarts it mid-step, the running step kept in Redis is gone and the daemon's
next write fails on its dead connection: the daemon then starts the step over
for clients (``PartsReset``, then the step so far in full). When the provider
drops the stream and the step is retried, the step kept in Redis is dropped at
once, so a subscriber joining before the retry streams again replays nothing of
the failed attempt. Either way what a client builds from the stream is what the
daemon produced, character for character.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from db.vocabulary import MessageRole
from tests.conftest import make_settings
from tests.daemon.live import (
    FAST_DAEMON,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    http_client,
    is_message,
    messages_of,
    new_user,
    nonce,
    running_app,
    stored_text,
    typename,
)
from tests.daemon.test_live_parts_replicas import (
    EVENTS,
    built_text,
    reply_text,
    step_events,
    until_text,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient
from tests.private_redis import RedisServer


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> AsyncIterator[Starlette]:
    settings = make_settings(
        database_url, tmp_path_factory, broadcast_url=redis_server.url, **FAST_DAEMON
    )
    async with running_app(settings) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
        yield gql


async def test_a_redis_restart_mid_step_leaves_clients_with_the_daemons_text(
    live_server: str, client: GraphQLClient, redis_server: RedisServer
) -> None:
    token = await new_user(client)
    reply = reply_text()
    chat = await create_chat(client, token, f"/slow 50\n/reply {reply}")
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
        await until_text(sub, 8)
        await redis_server.kill()
        await redis_server.start()
        await sub.until(lambda e: is_message(e, "ASSISTANT"), timeout=30)
    await chat_settled(chat_uuid(chat["id"]), timeout=30)
    [message] = await messages_of(chat_uuid(chat["id"]), MessageRole.ASSISTANT)
    assert stored_text(message.parts) == reply
    events = step_events(sub.received)
    assert any(typename(e, "Resync") for e in events)
    assert built_text(events) == reply


async def test_a_subscriber_joining_during_a_retry_replays_nothing_of_the_failed_attempt(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client)
    reply = " ".join(f"r{i}-{nonce()}" for i in range(6))
    chat = await create_chat(client, token, f"/slow 300\n/cut 3 1\n/reply {reply}")
    async with (
        GraphQLSocket.open(live_server, token) as first,
        GraphQLSocket.open(live_server, token) as second,
    ):
        early = await first.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
        await early.until(lambda e: typename(e, "RetryScheduled"), timeout=30)
        late = await second.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
        await late.until(lambda e: is_message(e, "ASSISTANT"), timeout=30)
    [message] = await messages_of(chat_uuid(chat["id"]), MessageRole.ASSISTANT)
    assert stored_text(message.parts) == reply
    assert built_text(step_events(late.received)) == reply
