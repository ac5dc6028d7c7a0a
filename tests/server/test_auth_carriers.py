"""Every place a client can put its token, and every way a token can be bad."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from db.models import ApiToken
from server.request_auth import COOKIE_NAME
from tests.harness import PASSWORD, GraphQLClient, graphql_ws

VIEWER = "{ viewer { user { username } permissions } }"
LOGIN_ADMIN = (
    'mutation { login(input: {username: "admin", password: "' + PASSWORD + '"}) { token } }'
)


async def test_signed_out_viewer_is_null_without_errors(gql: GraphQLClient) -> None:
    result = await gql(VIEWER)
    assert result == {"data": {"viewer": None}, "extensions": {"cost": 2}}


async def test_bearer_header(gql: GraphQLClient, admin_token: str) -> None:
    data = await gql.ok(VIEWER, token=admin_token)
    assert data["viewer"]["user"]["username"] == "admin"
    assert "MANAGE_USERS" in data["viewer"]["permissions"]


async def test_login_sets_http_only_cookie_that_authenticates(
    http: httpx.AsyncClient, admin_token: str
) -> None:
    response = await http.post(
        "/graphql",
        json={"query": LOGIN_ADMIN},
    )
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    token = response.json()["data"]["login"]["token"]
    answer = await http.post(
        "/graphql", json={"query": VIEWER}, headers={"Cookie": f"{COOKIE_NAME}={token}"}
    )
    assert answer.json()["data"]["viewer"]["user"]["username"] == "admin"


async def test_logout_ends_the_session(gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    data = await gql.ok(LOGIN_ADMIN)
    token = data["login"]["token"]
    response = await http.post(
        "/graphql",
        json={"query": "mutation { logout }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["data"] == {"logout": True}
    assert f'{COOKIE_NAME}=""' in response.headers["set-cookie"]
    error = await gql.error(VIEWER, token=token)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "token revoked"


@pytest.mark.parametrize(
    ("token", "message"),
    [("agq_not-a-real-token", "invalid token"), ("garbage", "invalid token")],
)
async def test_wrong_tokens_are_unauthenticated(
    gql: GraphQLClient, token: str, message: str
) -> None:
    error = await gql.error(VIEWER, token=token)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == message


async def test_expired_token_is_unauthenticated(gql: GraphQLClient, admin_token: str) -> None:
    created = await gql.ok(
        'mutation { createApiToken(input: {name: "ci"}) { secret token { id } } }',
        token=admin_token,
    )
    secret = created["createApiToken"]["secret"]
    await ApiToken.filter(prefix=secret[:10]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    error = await gql.error(VIEWER, token=secret)
    assert (error["extensions"]["code"], error["message"]) == ("UNAUTHENTICATED", "token expired")


async def test_revoked_api_token_is_unauthenticated(gql: GraphQLClient, admin_token: str) -> None:
    created = await gql.ok(
        'mutation { createApiToken(input: {name: "laptop"}) { secret token { id } } }',
        token=admin_token,
    )
    secret, token_id = created["createApiToken"]["secret"], created["createApiToken"]["token"]["id"]
    assert (await gql.ok(VIEWER, token=secret))["viewer"]["user"]["username"] == "admin"
    await gql.ok(
        "mutation($id: ID!) { revokeApiToken(input: {id: $id}) { token { revokedAt } } }",
        {"id": token_id},
        token=admin_token,
    )
    error = await gql.error(VIEWER, token=secret)
    assert (error["extensions"]["code"], error["message"]) == ("UNAUTHENTICATED", "token revoked")


async def _ws_viewer(ws) -> dict:
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": VIEWER}})
    message = await ws.receive_json(timeout=5)
    assert message["type"] == "next", message
    return message["payload"]


async def test_websocket_connection_init_auth_token(app, admin_token: str) -> None:
    async with graphql_ws(app, init={"authToken": admin_token}) as ws:
        payload = await _ws_viewer(ws)
    assert payload["data"]["viewer"]["user"]["username"] == "admin"


async def test_websocket_session_token_query_parameter(app, admin_token: str) -> None:
    async with graphql_ws(app, f"/graphql?session_token={admin_token}") as ws:
        payload = await _ws_viewer(ws)
    assert payload["data"]["viewer"]["user"]["username"] == "admin"


async def test_websocket_cookie(app, admin_token: str) -> None:
    async with graphql_ws(app, headers={"Cookie": f"{COOKIE_NAME}={admin_token}"}) as ws:
        payload = await _ws_viewer(ws)
    assert payload["data"]["viewer"]["user"]["username"] == "admin"


async def test_init_token_wins_over_a_stale_cookie(app, admin_token: str) -> None:
    stale = {"Cookie": f"{COOKIE_NAME}=agq_stale"}
    async with graphql_ws(app, headers=stale, init={"authToken": admin_token}) as ws:
        payload = await _ws_viewer(ws)
    assert payload["data"]["viewer"]["user"]["username"] == "admin"


async def test_websocket_bad_token_is_refused_at_init(app) -> None:
    transport = ASGIWebSocketTransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        aconnect_ws("/graphql", client, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"authToken": "agq_wrong"}})
        with pytest.raises(WebSocketDisconnect) as caught:
            await ws.receive_json(timeout=5)
    assert caught.value.code == 4403


async def test_websocket_signed_out_viewer_is_null(app) -> None:
    async with graphql_ws(app) as ws:
        assert (await _ws_viewer(ws))["data"] == {"viewer": None}
