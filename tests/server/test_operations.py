"""Health, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio

import httpx

from tests.harness import GraphQLClient, graphql_ws


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_when_everything_is_up(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    first = await http.get("/healthz")
    second = await http.get("/healthz")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    echoed = await http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    sanitized = await http.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert sanitized.headers["x-request-id"] != "bad id with spaces"


async def test_metrics_count_operations_errors_and_sockets(
    app, http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await gql("query Probe { viewer { user { username } } }")
    await gql("{ users { nodes { id } } }")  # UNAUTHENTICATED
    async with graphql_ws(app):
        text = (await http.get("/metrics")).text
        assert "agentgql_websocket_connections 1.0" in text
    assert 'agentgql_graphql_operations_total{operation="Probe",type="query"} 1.0' in text
    assert 'agentgql_graphql_errors_total{code="UNAUTHENTICATED"}' in text
    assert "agentgql_graphql_operation_seconds_bucket" in text
    assert "agentgql_active_subscriptions" in text


async def test_active_subscriptions_gauge_follows_open_subscriptions(
    app, http: httpx.AsyncClient, admin_token: str
) -> None:
    def active(text: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith("agentgql_active_subscriptions "))
        return float(line.split()[1])

    before = active((await http.get("/metrics")).text)
    async with graphql_ws(app, init={"authToken": admin_token}) as ws:
        query = "subscription { titleChanges { ... on TitleChange { chatId title } } }"
        await ws.send_json({"id": "s1", "type": "subscribe", "payload": {"query": query}})
        for _ in range(200):  # the subscription starts asynchronously; wait for it to count
            if active((await http.get("/metrics")).text) == before + 1:
                break
            await asyncio.sleep(0.01)
        assert active((await http.get("/metrics")).text) == before + 1
        await ws.send_json({"id": "s1", "type": "complete"})
        for _ in range(200):
            if active((await http.get("/metrics")).text) == before:
                break
            await asyncio.sleep(0.01)
        assert active((await http.get("/metrics")).text) == before
