"""Cross-site request forgery and WebSocket origin rules."""

from __future__ import annotations

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from server.request_auth import COOKIE_NAME

VIEWER = "{ viewer { user { username } } }"


def _cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={token}"}


async def test_cookie_json_post_is_allowed(http: httpx.AsyncClient, admin_token: str) -> None:
    response = await http.post("/graphql", json={"query": VIEWER}, headers=_cookie(admin_token))
    assert response.json()["data"]["viewer"]["user"]["username"] == "admin"


async def test_cookie_form_post_without_preflight_header_is_refused(
    http: httpx.AsyncClient, admin_token: str
) -> None:
    response = await http.post(
        "/graphql",
        content=b'{"query": "mutation { logout }"}',
        headers={**_cookie(admin_token), "Content-Type": "text/plain"},
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("header", ["Apollo-Require-Preflight", "X-Requested-With"])
async def test_multipart_needs_a_preflight_header(
    http: httpx.AsyncClient, admin_token: str, header: str
) -> None:
    form = {"operations": '{"query": "{ viewer { user { username } } }"}', "map": "{}"}
    refused = await http.post(
        "/graphql", data=form, files={"x": ("a.txt", b"x")}, headers=_cookie(admin_token)
    )
    assert refused.status_code == 403
    assert "Apollo-Require-Preflight" in refused.json()["errors"][0]["message"]
    allowed = await http.post(
        "/graphql",
        data=form,
        files={"x": ("a.txt", b"x")},
        headers={**_cookie(admin_token), header: "1"},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["viewer"]["user"]["username"] == "admin"


async def test_multipart_without_cookie_still_needs_the_header(
    http: httpx.AsyncClient, admin_token: str
) -> None:
    form = {"operations": '{"query": "{ viewer { user { username } } }"}', "map": "{}"}
    response = await http.post(
        "/graphql",
        data=form,
        files={"x": ("a.txt", b"x")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 403


async def test_bearer_form_post_is_not_a_csrf_risk(
    http: httpx.AsyncClient, admin_token: str
) -> None:
    # A header token cannot be attached by a foreign site, so no preflight rule.
    response = await http.post(
        "/graphql",
        params={"query": VIEWER},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code != 403


async def _handshake(app, origin: str | None) -> str:
    headers = {"Origin": origin} if origin else {}
    client = httpx.AsyncClient(
        transport=ASGIWebSocketTransport(app=app), base_url="http://testserver"
    )
    async with client:
        try:
            async with aconnect_ws(
                "/graphql", client, subprotocols=["graphql-transport-ws"], headers=headers
            ) as ws:
                await ws.send_json({"type": "connection_init"})
                return str((await ws.receive_json(timeout=5))["type"])
        except Exception as exc:  # the handshake refusal surfaces as an error
            return f"refused: {type(exc).__name__}"


async def test_same_origin_websocket_is_accepted(app) -> None:
    assert await _handshake(app, "http://testserver") == "connection_ack"


async def test_foreign_origin_websocket_is_refused(app) -> None:
    assert (await _handshake(app, "https://evil.example")).startswith("refused")


async def test_missing_origin_is_accepted_for_non_browser_clients(app) -> None:
    assert await _handshake(app, None) == "connection_ack"
