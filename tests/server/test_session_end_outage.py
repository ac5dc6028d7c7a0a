"""A session end announced while the broadcast backend is down still ends the socket.

The app broadcasts over a private redis-server that the test kills: the
revocation's announcement is lost, and the idle subscription sends no new
operation that would re-check the token. When the hub is back it resyncs every
subscriber, and the session watch then re-checks every socket it serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from tests.conftest import make_settings
from tests.daemon.live import GraphQLSocket, http_client, new_user, running_app
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient
from tests.private_redis import RedisServer
from tests.server.test_session_end import (
    CREATE_TOKEN,
    REVOKE_TOKEN,
    closed_with,
    live_subscription,
)


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


async def test_a_token_revoked_during_an_outage_ends_its_socket_when_the_hub_is_back(
    live_server: str, client: GraphQLClient, redis_server: RedisServer
) -> None:
    session = await new_user(client)
    made = (await client.ok(CREATE_TOKEN, {"name": "ci"}, token=session))["createApiToken"]
    async with GraphQLSocket.open(live_server, made["secret"]) as socket:
        await live_subscription(socket, client, made["secret"])
        await redis_server.kill()
        # Committed, but its announcement has nowhere to go.
        await client.ok(REVOKE_TOKEN, {"id": made["token"]["id"]}, token=session)
        await redis_server.start()
        assert await closed_with(socket, timeout=30) == 4403
