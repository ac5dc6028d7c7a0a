"""``chatEvents`` across a Redis restart, end to end.

The app (and its daemon) broadcast over a private redis-server on a free port.
Killing and restarting it must reach the client as a ``Resync`` on the open
subscription, and later events must still arrive on it: never a silent hang.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from tests.conftest import make_settings
from tests.daemon.live import (
    CHAT_EVENTS,
    FAST_DAEMON,
    SEND,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    http_client,
    is_message,
    is_status,
    new_user,
    running_app,
    text_of,
    typename,
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
    assert settings.broadcast_url == redis_server.url
    async with running_app(settings) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
        yield gql


async def test_a_redis_restart_reaches_the_client_as_resync_and_the_stream_goes_on(
    live_server: str, client: GraphQLClient, redis_server: RedisServer
) -> None:
    token = await new_user(client)
    chat = await create_chat(client, token, f"before the restart {uuid.uuid4().hex[:6]}")
    await chat_settled(chat_uuid(chat["id"]))
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        replay = await sub.until(lambda e: typename(e, "QueueUpdated"))
        assert is_status(replay[0], "WAITING")
        assert [e["message"]["role"] for e in replay if is_message(e)] == ["USER", "ASSISTANT"]

        await redis_server.kill()
        await redis_server.start()
        resynced = await sub.until(lambda e: typename(e, "Resync"), timeout=20)
        assert resynced[-1]["reason"]
        # Then the stream starts over from the last message: status, queue.
        resynced += await sub.until(lambda e: typename(e, "QueueUpdated"))
        assert [e["status"] for e in resynced if typename(e, "StatusChanged")][-1] == "WAITING"
        assert not [e for e in resynced if is_message(e)]  # nothing new, nothing doubled

        after = f"after the restart {uuid.uuid4().hex[:6]}"
        await client.ok(SEND, {"id": chat["id"], "text": after}, token=token)
        events = await sub.until(lambda e: is_status(e, "WAITING"), timeout=15)

    created = [e["message"] for e in events if is_message(e)]
    assert [m["role"] for m in created] == ["USER", "ASSISTANT"]
    assert text_of(created[1]["parts"]) == f"You said: {after}"
    assert any(typename(e, "PartDelta") for e in events)
