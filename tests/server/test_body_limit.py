"""Oversized bodies are refused while being read, with a GraphQL-shaped 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

LIMIT = 12 * 1024 * 1024  # the default AGENTGQL_MAX_BODY_BYTES


async def test_declared_oversized_body_is_payload_too_large(http: httpx.AsyncClient) -> None:
    body = b'{"query": "{ viewer { user { id } } }", "x": "' + b"a" * LIMIT + b'"}'
    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "maximum": LIMIT}


async def test_streamed_body_without_length_is_cut_off(http: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"a" * (1024 * 1024)
        for _ in range(20):
            sent += len(chunk)
            yield chunk

    response = await http.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_body_under_the_limit_is_served(http: httpx.AsyncClient) -> None:
    body = (
        b'{"query": "{ viewer { user { id } } }", "variables": {"pad": "'
        + b"a" * 1_000_000
        + b'"}}'
    )
    response = await http.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"viewer": None}
