"""Health, readiness and metrics endpoints."""

from __future__ import annotations

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
