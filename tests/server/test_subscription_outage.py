"""A subscription opened while the broadcast backend is down.

The app broadcasts over a private redis-server that the test kills. A new
subscription then waits a bounded while for the hub to reconnect: a short outage
costs it a moment, a longer one a clear refusal, UNAVAILABLE with
``retryAfterSeconds``, never INTERNAL_SERVER_ERROR. The socket itself survives
either way, and a subscription opened once the backend is back is live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from db.vocabulary import ErrorCode
from tests.conftest import make_settings
from tests.daemon.live import (
    CHAT_LIST_EVENTS,
    GraphQLSocket,
    Subscription,
    create_chat,
    eventually,
    http_client,
    new_user,
    nonce,
    running_app,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient
from tests.private_redis import RedisServer
from tests.server.test_session_end import live_subscription


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> AsyncIterator[Starlette]:
    settings = make_settings(database_url, tmp_path_factory, broadcast_url=redis_server.url)
    async with running_app(settings, run_daemon=False) as application:
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
        yield gql


async def outcome(sub: Subscription, timeout: float = 30) -> dict[str, Any]:  # noqa: ASYNC109 (a test helper)
    """The first frame the server sends for ``sub`` (an event, or its refusal)."""
    message: dict[str, Any] = await asyncio.wait_for(sub.queue.get(), timeout)
    return message


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A refusal's errors: graphql-transport-ws sends them as ``error`` (a list) or
    as a ``next`` result with ``errors``."""
    if message["type"] == "error":
        payload: list[dict[str, Any]] = message["payload"]
        return payload
    errors: list[dict[str, Any]] = message.get("payload", {}).get("errors") or []
    return errors


async def test_a_subscription_during_an_outage_is_refused_as_unavailable(
    backend_up: None,
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    redis_server: RedisServer,
) -> None:
    token = await new_user(client)
    async with GraphQLSocket.open(live_server, token) as socket:
        await redis_server.kill()
        refused = await outcome(await socket.subscribe(CHAT_LIST_EVENTS, field="chatListEvents"))

        errors = errors_of(refused)
        assert len(errors) == 1, refused
        extensions = errors[0]["extensions"]
        assert extensions["code"] == ErrorCode.UNAVAILABLE.value
        assert extensions["code"] != ErrorCode.INTERNAL_SERVER_ERROR.value
        assert isinstance(extensions["retryAfterSeconds"], int)
        assert extensions["retryAfterSeconds"] >= 1
        # Says what to do, and nothing of where the backend is.
        assert "retry" in errors[0]["message"].lower()
        assert str(redis_server.port) not in str(refused)

        # The socket is still good: once the backend is back, subscribing works.
        await redis_server.start()
        await eventually(app.state.event_hub.ping, timeout=30)
        await live_subscription(socket, client, token)


async def test_a_subscription_during_a_short_outage_waits_for_the_backend(
    backend_up: None,
    app: Starlette,
    live_server: str,
    client: GraphQLClient,
    redis_server: RedisServer,
) -> None:
    token = await new_user(client)
    async with GraphQLSocket.open(live_server, token) as socket:
        await redis_server.kill()
        sub = await socket.subscribe(CHAT_LIST_EVENTS, field="chatListEvents")
        await redis_server.start()  # back within the wait
        hub = app.state.event_hub

        async def joined() -> bool:  # the waiting subscription got its channel
            return any(name.startswith("owner:") for name in hub.channels)

        await eventually(joined, timeout=30)
        await create_chat(client, token, f"hello {nonce()}")
        event = await sub.next(timeout=30)
        assert event["kind"] == "CREATED"
        assert not [m for m in sub.received if "errors" in m]
