"""Sessions end everywhere at once: open WebSockets follow revocations.

Real uvicorn, the daemon on, real Redis as the broadcast backend (so a second
replica in this process hears what the first announces), and real
graphql-transport-ws clients. Revoking a token, logging out, disabling a user
or changing their role closes the affected sockets with 4403; a socket whose
token was revoked or whose user was disabled without anyone hearing of it still
cannot start an operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from db.models import ApiToken, Chat, User
from db.secret_box import SecretBox
from events.announcer import ChatAnnouncer
from events.hub import EventHub
from resolvers.tokens import hash_token
from server.app import create_app
from server.settings import Settings
from tests.conftest import make_settings
from tests.daemon.live import (
    CHAT_LIST_EVENTS,
    CREATE_CHAT,
    FAST_DAEMON,
    GraphQLSocket,
    Subscription,
    create_chat,
    http_client,
    new_user,
    nonce,
    running_app,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient

REDIS_URL = "redis://127.0.0.1:6379"
CLOSE_WAIT_S = 5.0

VIEWER = "query { viewer { user { id role } permissions } }"
CREATE_TOKEN = """
mutation($name: String!) { createApiToken(input: {name: $name}) { secret token { id } } }"""
CREATE_EXPIRING = """
mutation($name: String!, $at: DateTime!) {
  createApiToken(input: {name: $name, expiresAt: $at}) { secret token { id } }
}"""
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(input: {id: $id}) { token { id revokedAt } } }"
LOGOUT = "mutation { logout }"
SET_DISABLED = """
mutation($id: ID!, $disabled: Boolean!) {
  setUserDisabled(input: {userId: $id, disabled: $disabled}) { user { id disabled } }
}"""
SET_ROLE = """
mutation($id: ID!, $role: UserRole!) {
  setUserRole(input: {userId: $id, role: $role}) { user { id role } }
}"""


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """This module's app: the daemon runs, events go through the real Redis."""
    settings = make_settings(database_url, tmp_path_factory, broadcast_url=REDIS_URL, **FAST_DAEMON)
    async with running_app(settings) as application:
        yield application


@pytest.fixture(scope="module")
async def accounts(live_server: str) -> AsyncIterator[tuple[GraphQLClient, str]]:
    """An HTTP client of the first replica, and the first account (the ADMIN)."""
    async with http_client(live_server) as gql:
        data = await gql.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
        yield gql, str(data["signUp"]["token"])


@pytest.fixture(scope="module")
def client(accounts: tuple[GraphQLClient, str]) -> GraphQLClient:
    return accounts[0]


@pytest.fixture(scope="module")
def admin(accounts: tuple[GraphQLClient, str]) -> str:
    return accounts[1]


# -- helpers ---------------------------------------------------------------------------


async def closed_with(socket: GraphQLSocket, timeout: float = CLOSE_WAIT_S) -> int | None:  # noqa: ASYNC109 (a test helper)
    """The close code, once the server closed the socket (fails after the deadline)."""
    try:
        await asyncio.wait_for(socket.ws.wait_closed(), timeout)
    except TimeoutError:
        raise AssertionError(f"the socket is still open after {timeout}s") from None
    return socket.ws.close_code


async def live_subscription(socket: GraphQLSocket, gql: GraphQLClient, token: str) -> Subscription:
    """A chatListEvents subscription proven live: it saw a chat being created."""
    sub = await socket.subscribe(CHAT_LIST_EVENTS, field="chatListEvents")
    await create_chat(gql, token, f"hello {nonce()}")
    await sub.next()
    return sub


async def one_result(socket: GraphQLSocket, query: str, field: str) -> Any:
    sub = await socket.subscribe(query, field=field)
    return await sub.next()


async def user_id_of(gql: GraphQLClient, token: str) -> str:
    data = await gql.ok(VIEWER, token=token)
    return str(data["viewer"]["user"]["id"])


def frames_for(socket: GraphQLSocket, sub: Subscription) -> list[str]:
    return [f for f in socket.frames if f'"id":"{sub.id}"' in f.replace(" ", "")]


@contextlib.asynccontextmanager
async def serve(application: Starlette) -> AsyncIterator[str]:
    config = uvicorn.Config(application, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)


@contextlib.asynccontextmanager
async def second_replica(settings: Settings) -> AsyncIterator[str]:
    """Another replica of the deployment: its own app, view and Redis connection.

    Only one Tortoise context exists per process, so it shares the first one's
    database pool; everything between the replicas goes through Redis.
    """
    replica = create_app(settings)
    hub = EventHub(settings.broadcast_url)
    await hub.connect()
    replica.state.secrets = SecretBox(settings.resolved_secret_key())
    replica.state.event_hub = hub
    replica.state.announcer = ChatAnnouncer(hub)
    replica.state.daemon = None
    try:
        async with serve(replica) as url:
            yield url
    finally:
        await hub.disconnect()


# -- announced ends ----------------------------------------------------------------------


async def test_revoking_an_api_token_closes_its_sockets_and_only_those(
    live_server: str, client: GraphQLClient
) -> None:
    session = await new_user(client)
    made = (await client.ok(CREATE_TOKEN, {"name": "ci"}, token=session))["createApiToken"]
    async with (
        GraphQLSocket.open(live_server, made["secret"]) as api_socket,
        GraphQLSocket.open(live_server, session) as session_socket,
    ):
        await live_subscription(api_socket, client, made["secret"])
        await client.ok(REVOKE_TOKEN, {"id": made["token"]["id"]}, token=session)
        assert await closed_with(api_socket) == 4403
        # The same user's other session is untouched and still runs operations.
        viewer = await one_result(session_socket, VIEWER, "viewer")
        assert viewer["user"]["id"] == await user_id_of(client, session)


async def test_logging_out_closes_the_sessions_sockets(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client)
    async with GraphQLSocket.open(live_server, token) as socket:
        await live_subscription(socket, client, token)
        assert await client.ok(LOGOUT, token=token) == {"logout": True}
        assert await closed_with(socket) == 4403


async def test_disabling_a_user_closes_every_socket_of_theirs(
    live_server: str, client: GraphQLClient, admin: str
) -> None:
    token = await new_user(client)
    made = (await client.ok(CREATE_TOKEN, {"name": "bot"}, token=token))["createApiToken"]
    user_id = await user_id_of(client, token)
    async with (
        GraphQLSocket.open(live_server, token) as first,
        GraphQLSocket.open(live_server, made["secret"]) as second,
        GraphQLSocket.open(live_server, admin) as bystander,
    ):
        await live_subscription(first, client, token)
        await client.ok(SET_DISABLED, {"id": user_id, "disabled": True}, token=admin)
        assert await closed_with(first) == 4403
        assert await closed_with(second) == 4403
        assert (await one_result(bystander, VIEWER, "viewer"))["user"]["role"] == "ADMIN"


async def test_a_role_change_closes_the_sockets_and_a_new_one_has_the_new_role(
    live_server: str, client: GraphQLClient, admin: str
) -> None:
    token = await new_user(client)
    user_id = await user_id_of(client, token)
    async with GraphQLSocket.open(live_server, token) as socket:
        await live_subscription(socket, client, token)
        await client.ok(SET_ROLE, {"id": user_id, "role": "ADMIN"}, token=admin)
        assert await closed_with(socket) == 4403
    async with GraphQLSocket.open(live_server, token) as again:
        viewer = await one_result(again, VIEWER, "viewer")
    assert viewer["user"]["role"] == "ADMIN"
    assert "MANAGE_USERS" in viewer["permissions"]


async def test_a_socket_ends_when_its_token_expires(
    live_server: str, client: GraphQLClient
) -> None:
    session = await new_user(client)
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    made = await client.ok(CREATE_EXPIRING, {"name": "short", "at": at}, token=session)
    async with GraphQLSocket.open(live_server, made["createApiToken"]["secret"]) as socket:
        await socket.subscribe(CHAT_LIST_EVENTS, field="chatListEvents")
        assert await closed_with(socket, timeout=3 + CLOSE_WAIT_S) == 4403


# -- unannounced ends: each new operation checks the token again -------------------------


async def test_a_revoked_token_cannot_start_an_operation_even_unannounced(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client)
    async with GraphQLSocket.open(live_server, token) as socket:
        assert (await one_result(socket, VIEWER, "viewer"))["user"]["id"]
        # Revoked in the database behind the server's back: no announcement.
        await ApiToken.filter(token_hash=hash_token(token)).update(revoked_at=datetime.now(UTC))
        sub = await socket.subscribe(VIEWER, field="viewer")
        assert await closed_with(socket) == 4403
        assert frames_for(socket, sub) == []


async def test_a_disabled_user_cannot_create_a_chat_over_an_open_socket(
    live_server: str, client: GraphQLClient
) -> None:
    token = await new_user(client)
    user_id = uuid.UUID(str((await ApiToken.get(token_hash=hash_token(token))).user_id))  # type: ignore[attr-defined]
    async with GraphQLSocket.open(live_server, token) as socket:
        # Disabled behind the server's back: the token rows stay, nothing is announced.
        await User.filter(id=user_id).update(disabled=True)
        sub = await socket.subscribe(CREATE_CHAT, {"text": f"run me {nonce()}"}, field="createChat")
        assert await closed_with(socket) == 4403
        assert frames_for(socket, sub) == []
    assert await Chat.filter(owner_id=user_id).count() == 0  # nothing for a daemon to run


# -- replicas ------------------------------------------------------------------------------


async def test_a_token_revoked_on_one_replica_closes_its_socket_on_another(
    app: Starlette, live_server: str, client: GraphQLClient
) -> None:
    session = await new_user(client)
    made = (await client.ok(CREATE_TOKEN, {"name": "far"}, token=session))["createApiToken"]
    async with (
        second_replica(app.state.settings) as replica_b,
        GraphQLSocket.open(replica_b, made["secret"]) as socket,
    ):
        await live_subscription(socket, client, made["secret"])  # chat made on A, seen on B
        await client.ok(REVOKE_TOKEN, {"id": made["token"]["id"]}, token=session)  # on A
        assert await closed_with(socket) == 4403
