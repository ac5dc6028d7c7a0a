"""Ordinary errors are answered by the compiled plan itself, byte for byte as
graphql-core answers them.

Each request goes twice through the HTTP endpoint on the same data: once as
served (the compiled engine, which must not fall back: its fallback counter
stays still) and once with the engine switched off for that request (Strawberry
on graphql-core alone). Status, body and content type must be identical: the
message, path, locations and ``extensions.code``, and the null left at the
nearest nullable parent (a non-null field bubbles through to it, up to
``data: null``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage, User
from db.vocabulary import MessageRole
from resolvers import global_id
from schema.engine.executor import FastExecutor
from schema.limits import parse_cached
from tests.harness import GraphQLClient

UNKNOWN_USER = global_id.encode("User", uuid.UUID(int=7))


def graphql_schema(app: Starlette) -> Any:
    for route in app.routes:
        if getattr(route, "path", None) == "/graphql":
            return route.endpoint.schema  # type: ignore[attr-defined]
    raise AssertionError("no /graphql route")


@contextmanager
def engine_off(app: Starlette) -> Iterator[None]:
    """This app without compiled queries, as ``AGENTGQL_COMPILED_QUERIES=false``
    builds it (no executor, no fast lane)."""
    schema = graphql_schema(app)
    fast, lane = schema.fast, schema.fast_lane
    schema.fast = schema.fast_lane = None
    try:
        yield
    finally:
        schema.fast, schema.fast_lane = fast, lane


async def _post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None
) -> httpx.Response:
    headers = {"X-Request-ID": "compiled-errors"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        return await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    finally:
        http.cookies.clear()


@pytest.fixture(scope="module")
async def seeded(gql: GraphQLClient, admin_token: str, member_token: str) -> dict[str, str]:
    """A chat with messages for the member; the admin owns another."""
    member = await User.get(username="member")
    admin = await User.get(username="admin")
    now = datetime.now(UTC)
    ids: dict[str, str] = {}
    for owner, name in ((member, "mine"), (admin, "theirs")):
        chat_id = uuid.uuid4()
        await Chat.create(id=chat_id, owner=owner, root_id=chat_id, title=name, updated_at=now)
        for i in range(3):
            await ChatMessage.create(
                chat_id=chat_id,
                role=MessageRole.USER,
                parts=[{"type": "text", "text": f"m{i}"}],
                created_by_id=owner.id,
            )
        ids[name] = global_id.encode("Chat", chat_id)
    ids["admin"] = global_id.encode("User", admin.id)
    return ids


# (name, query, variables, who asks: None | "member" | "admin", expected codes)
CASES: list[tuple[str, str, dict[str, Any], str | None, list[str]]] = [
    (
        "sign in required among fields that answer without it",
        "query($id: ID!) { viewer { user { id } } chat(id: $id) { id } workspaces { id } }",
        {"id": "mine"},
        None,
        ["UNAUTHENTICATED"],
    ),
    (
        "sign in required, non-null root field: data is null",
        "{ chats(first: 2) { nodes { id } } }",
        {},
        None,
        ["UNAUTHENTICATED"],
    ),
    (
        "bad cursor bubbles through a non-null connection to the nullable chat",
        """query($id: ID!) { chat(id: $id) { id title
             messages(first: 2, after: "not a cursor") { nodes { id } } } }""",
        {"id": "mine"},
        "member",
        ["BAD_USER_INPUT"],
    ),
    (
        "bad cursor on a non-null root field, a sibling resolved",
        """query($id: ID!) { chat(id: $id) { title }
             chats(first: 1, after: "bm90IGEgY3Vyc29y") { nodes { id } } }""",
        {"id": "mine"},
        "member",
        ["BAD_USER_INPUT"],
    ),
    (
        "permission refusal",
        "{ viewer { user { username } } groups { name } }",
        {},
        "member",
        ["FORBIDDEN"],
    ),
    (
        "another user's costs without the permission",
        """query($admin: ID!) { theirs: costSummary(userId: $admin) { totalCostMicros } }""",
        {"admin": "admin"},
        "member",
        ["FORBIDDEN"],
    ),
    (
        "not found",
        """query($unknown: ID!) { viewer { user { id } }
             costSummary(userId: $unknown) { totalCostMicros } }""",
        {"unknown": UNKNOWN_USER},
        "admin",
        ["NOT_FOUND"],
    ),
    (
        # Only orders graphql-core itself keeps: a and c fail before any I/O,
        # in document order; b's page fails after its chat was read.
        "several errors: aliases and fragments, each nulls its own chat",
        """query($id: ID!) {
             a: chat(id: "bm90IGFuIGlk") { id }
             b: chat(id: $id) { ...M id }
             c: chat(id: "eHl6") { ...M }
           }
           fragment M on Chat { messages(last: 1, before: "zz") { edges { cursor } } }""",
        {"id": "mine"},
        "member",
        ["BAD_USER_INPUT", "BAD_USER_INPUT", "BAD_USER_INPUT"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_an_error_is_answered_by_the_plan_as_graphql_core_answers_it(
    app: Starlette,
    http: httpx.AsyncClient,
    seeded: dict[str, str],
    admin_token: str,
    member_token: str,
    case: tuple[str, str, dict[str, Any], str | None, list[str]],
) -> None:
    _, query, raw_variables, who, codes = case
    variables = {k: seeded.get(v, v) for k, v in raw_variables.items()}
    token = {"member": member_token, "admin": admin_token, None: None}[who]
    executor: FastExecutor = graphql_schema(app).fast
    assert executor.plan(graphql_schema(app)._schema, parse_cached(query, 5000), None) is not None
    fallbacks, runs = sum(executor.fallbacks.values()), executor.runs

    compiled = await _post(http, query, variables, token)

    assert sum(executor.fallbacks.values()) == fallbacks, executor.fallbacks
    assert executor.runs == runs + 1
    with engine_off(app):
        expected = await _post(http, query, variables, token)
    assert executor.runs == runs + 1
    assert compiled.status_code == expected.status_code == 200
    assert compiled.headers["content-type"] == expected.headers["content-type"]
    assert compiled.content == expected.content
    answer = compiled.json()
    assert [e["extensions"]["code"] for e in answer.get("errors", ())] == codes
