"""Shadow mode, always on here: representative queries through the HTTP
endpoint (the fast lane) and Strawberry's own path, every compiled answer run
through graphql-core as well, and the two must agree (``tests.compiled_shadow``
fails any test during which one did not).

The rest of the suite runs shadowed with ``pytest --shadow-compiled``.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import ExecutionResult
from starlette.applications import Starlette

from db.models import Chat, ChatMessage, ChatQueuedMessage, User
from db.vocabulary import UNPINNED_RANK, MessageRole
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.tokens import authenticate
from schema.engine.executor import SHADOW_DIFFERENCES, FastExecutor
from schema.limits import parse_cached
from tests.harness import GraphQLClient
from tests.schema.test_compiled_errors import graphql_schema
from tests.schema.test_fast_execution import ALL_PARTS, PARTS

MESSAGES = (
    """query($id: ID!, $first: Int, $last: Int, $after: String, $before: String) {
  chat(id: $id) { id title status labels lastError { kind message }
    owner { username } parent { id } children { id title }
    queuedMessages { id parts { ...P } }
    messages(first: $first, last: $last, after: $after, before: $before) {
      edges { cursor node { id role createdAt costMicros runtimeMs
        usage { inputTokens outputTokens } createdBy { username } parts { ...P } } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""
    + ALL_PARTS
)
CHATS = """query($first: Int, $last: Int, $after: String, $before: String, $q: String) {
  chats(first: $first, last: $last, after: $after, before: $before, query: $q) {
    edges { cursor node { id title pinOrder archived hasUnread owner { username }
      children { id } queuedMessages { id } } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@pytest.fixture(scope="module")
def executor(app: Starlette) -> FastExecutor:
    fast: FastExecutor = graphql_schema(app).fast
    fast.shadow = True
    return fast


@pytest.fixture(scope="module")
async def seeded(gql: GraphQLClient, admin_token: str, member_token: str) -> dict[str, Any]:
    member = await User.get(username="member")
    admin = await User.get(username="admin")
    now = datetime.now(UTC)
    root = uuid.uuid4()
    await Chat.create(
        id=root,
        owner=member,
        root_id=root,
        title="root",
        labels={"k": "v"},
        last_error={"kind": "timeout", "message": "boom"},
        updated_at=now,
    )
    child = uuid.uuid4()
    await Chat.create(
        id=child, owner=member, parent_id=root, root_id=root, title="sub", updated_at=now
    )
    for i in range(4):
        other = uuid.uuid4()
        await Chat.create(
            id=other,
            owner=member,
            root_id=other,
            title=f"chat {i}",
            pin_order=1 if i == 0 else 0,
            list_rank=1 if i == 0 else UNPINNED_RANK,
            archived=i == 3,
            updated_at=now - timedelta(minutes=i),
        )
    messages = []
    for i in range(9):
        assistant = i % 2 == 1
        messages.append(
            await ChatMessage.create(
                chat_id=root,
                role=MessageRole.ASSISTANT if assistant else MessageRole.USER,
                parts=PARTS[i % len(PARTS) :] or PARTS,
                created_by_id=None if assistant else member.id,
                input_tokens=10 * i if assistant else None,
                output_tokens=i if assistant else None,
                total_cost_micros=123 if assistant else None,
                runtime_ms=45 if assistant else None,
            )
        )
    await ChatQueuedMessage.create(chat_id=root, parts=PARTS[:2], created_by_id=member.id)
    theirs = uuid.uuid4()
    await Chat.create(id=theirs, owner=admin, root_id=theirs, title="theirs", updated_at=now)
    return {
        "chat": global_id.encode("Chat", root),
        "child": global_id.encode("Chat", child),
        "message": global_id.encode("Message", messages[2].id),
        "theirs": global_id.encode("Chat", theirs),
        "user": global_id.encode("User", member.id),
    }


def _cases(ids: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(query, variables, signed in)."""
    chat = ids["chat"]
    return [
        ("{ viewer { user { id username name email role disabled } } }", {}, True),
        ("{ viewer { user { id } } }", {}, False),
        (CHATS, {"first": 2}, True),
        (CHATS, {"last": 2}, True),
        (CHATS, {"first": 10, "q": "archived:any"}, True),
        (CHATS, {"first": 2, "after": "not a cursor"}, True),
        (CHATS, {"first": 2}, False),
        (MESSAGES, {"id": chat, "last": 50}, True),
        (MESSAGES, {"id": chat, "first": 3}, True),
        (MESSAGES, {"id": chat, "last": 2, "before": "bad"}, True),
        (MESSAGES, {"id": ids["theirs"], "first": 3}, True),
        (MESSAGES, {"id": ids["child"], "first": 3}, True),
        (
            """query($a: ID!, $b: ID!, $c: ID!, $d: ID!) {
              node(id: $a) { __typename id
                ... on Chat { title messages(last: 1) { nodes { id } } } }
              nodes(ids: [$a, $b, $c, $d, "bm9wZQ"]) { __typename id
                ... on Message { role parts { ...P } } ... on User { username } } }"""
            + ALL_PARTS,
            {"a": chat, "b": ids["message"], "c": ids["theirs"], "d": ids["user"]},
            True,
        ),
        ("{ groups { name } viewer { user { id } } }", {}, True),
        (
            "{ chatConfig { chatRetentionDays exploreModelOverride { __typename } }"
            " modelConfigs { id displayName enabled } workspaces { id } }",
            {},
            True,
        ),
    ]


async def test_representative_queries_agree_with_graphql_core(
    app: Starlette,
    gql: GraphQLClient,
    executor: FastExecutor,
    seeded: dict[str, Any],
    member_token: str,
) -> None:
    runs = executor.runs
    cases = _cases(seeded)
    for query, variables, signed_in in cases:
        token = member_token if signed_in else None
        await gql(query, variables, token=token)  # the fast lane
        # Strawberry's own path (what WebSocket queries and GETs take).
        context = RequestContext(request_id="shadow")
        if token is not None:
            context.viewer, context.token = await authenticate(token)
        await graphql_schema(app).execute(query, variables, context_value=context)
    assert executor.runs == runs + 2 * len(cases), executor.fallbacks
    assert SHADOW_DIFFERENCES == []


async def test_shadow_mode_reports_an_answer_graphql_core_does_not_give(
    app: Starlette, executor: FastExecutor, seeded: dict[str, Any]
) -> None:
    """The check can fail: a plan that answers wrongly (every time, so it is no
    race between the two runs) is recorded."""
    schema = graphql_schema(app)._schema
    document = parse_cached("{ viewer { user { id } } }", 5000)
    compiled = executor.plan(schema, document, None)
    assert compiled is not None
    forged = {"viewer": {"user": {"id": "forged"}}}
    wrong = dataclasses.replace(compiled, run_root=lambda run, root: forged)
    signed_out = {"context_value": RequestContext(request_id="shadow")}
    seen = len(SHADOW_DIFFERENCES)
    await executor._compare(ExecutionResult(data=forged), wrong, schema, signed_out)
    found = SHADOW_DIFFERENCES[seen:]
    del SHADOW_DIFFERENCES[seen:]
    assert [d.compiled["data"] for d in found] == [forged]
    assert found[0].expected == {"data": {"viewer": None}, "errors": None}


async def test_a_change_of_data_between_the_two_runs_is_no_difference(
    app: Starlette, executor: FastExecutor, seeded: dict[str, Any]
) -> None:
    """A live test's data may move between the compiled run and graphql-core's:
    both are run again, and when they then agree nothing is recorded."""
    schema = graphql_schema(app)._schema
    document = parse_cached("{ viewer { user { id } } }", 5000)
    compiled = executor.plan(schema, document, None)
    assert compiled is not None
    stale = ExecutionResult(data={"viewer": {"user": {"id": "before the change"}}})
    seen = len(SHADOW_DIFFERENCES)
    signed_out = {"context_value": RequestContext(request_id="shadow")}
    await executor._compare(stale, compiled, schema, signed_out)
    assert SHADOW_DIFFERENCES[seen:] == []
