"""Generated queries over the Query type: the compiled plan answers exactly what
graphql-core answers (data and unshaped errors), for a signed-in member, an
admin and nobody, with the ids of real seeded objects (and one that is not).

Queries come from hypothesis-graphql (random selections, aliases, fragments,
arguments). Fields whose answer depends on the clock (``costSummary``,
``userCosts``, ``pullRequestInsights``: their ranges default to now) are left
out: the two runs are microseconds apart. Bounded: a few dozen examples.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import ExecutionResult, GraphQLSchema, execute, parse, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from hypothesis_graphql import strategies as gql_st
from starlette.applications import Starlette

from db.models import ApiToken, Chat, ChatMessage, ChatQueuedMessage, User
from db.vocabulary import MessageRole
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.tokens import authenticate
from schema.engine.executor import FastExecutor, comparable
from schema.engine.plan import Fallback
from tests.harness import GraphQLClient
from tests.schema.test_compiled_errors import graphql_schema
from tests.schema.test_fast_execution import PARTS

CLOCK_FIELDS = {"costSummary", "userCosts", "pullRequestInsights"}
NOT_AN_ID = global_id.encode("Chat", uuid.UUID(int=1))

Viewer = tuple[User, ApiToken] | None


@pytest.fixture(scope="module")
async def world(
    gql: GraphQLClient, admin_token: str, member_token: str
) -> tuple[list[str], dict[str, Viewer]]:
    """Seeded objects' ids, and the viewers that ask."""
    member = await User.get(username="member")
    admin = await User.get(username="admin")
    now = datetime.now(UTC)
    ids = [global_id.encode("User", member.id), global_id.encode("User", admin.id), NOT_AN_ID]
    for owner, count in ((member, 3), (admin, 1)):
        for i in range(count):
            chat = uuid.uuid4()
            await Chat.create(
                id=chat,
                owner=owner,
                root_id=chat,
                title=f"{owner.username} {i}",
                labels={"n": str(i)},
                updated_at=now - timedelta(minutes=i),
            )
            ids.append(global_id.encode("Chat", chat))
            for j in range(3):
                message = await ChatMessage.create(
                    chat_id=chat,
                    role=MessageRole.USER if j % 2 == 0 else MessageRole.ASSISTANT,
                    parts=PARTS[j:],
                    created_by_id=owner.id if j % 2 == 0 else None,
                )
                ids.append(global_id.encode("Message", message.id))
            queued = await ChatQueuedMessage.create(
                chat_id=chat, parts=PARTS[:1], created_by_id=owner.id
            )
            ids.append(global_id.encode("QueuedMessage", queued.id))
    viewers: dict[str, Viewer] = {
        "member": await authenticate(member_token),
        "admin": await authenticate(admin_token),
        "nobody": None,
    }
    return ids, viewers


def _context(viewer: Viewer) -> RequestContext:
    context = RequestContext(request_id="differential")
    if viewer is not None:
        context.viewer, context.token = viewer
    return context


def _queries(schema: GraphQLSchema, ids: list[str]) -> st.SearchStrategy[Any]:
    assert schema.query_type is not None
    fields = sorted(set(schema.query_type.fields) - CLOCK_FIELDS)
    moments = st.sampled_from(["2025-01-01T00:00:00+00:00", "2026-06-30T12:00:00Z"])
    return gql_st.queries(
        schema,
        fields=fields,
        custom_scalars={
            "ID": st.sampled_from(ids).map(nodes.String),
            "DateTime": moments.map(nodes.String),
            "Date": st.sampled_from(["2025-01-01", "2026-06-30"]).map(nodes.String),
            "BigInt": st.integers(0, 10**12).map(nodes.Int),
            "JSON": st.just(nodes.String("x")),
        },
        allow_x00=False,
    )


async def _graphql_core(schema: GraphQLSchema, document: Any, viewer: Viewer) -> ExecutionResult:
    result = execute(schema, document, context_value=_context(viewer))
    if not isinstance(result, ExecutionResult):
        result = await result
    assert isinstance(result, ExecutionResult)
    return result


@pytest.fixture(scope="module")
def outcomes() -> dict[str, int]:
    return {}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_a_generated_query_is_answered_as_graphql_core_answers_it(
    app: Starlette,
    world: tuple[list[str], dict[str, Viewer]],
    outcomes: dict[str, int],
    data: st.DataObject,
) -> None:
    ids, viewers = world
    executor: FastExecutor = graphql_schema(app).fast
    schema: GraphQLSchema = graphql_schema(app)._schema
    query = data.draw(_queries(schema, ids), label="query")
    who = data.draw(st.sampled_from(sorted(viewers)), label="viewer")
    document = parse(str(query))
    if validate(schema, document):
        outcomes["invalid"] = outcomes.get("invalid", 0) + 1
        return
    compiled = executor.plan(schema, document, None)
    assert compiled is not None, "every valid generated query is one the plans cover"
    try:
        fast = await executor.run(compiled, schema, None, _context(viewers[who]))
    except Fallback as fallback:
        outcomes[str(fallback)] = outcomes.get(str(fallback), 0) + 1
        return
    expected = await _graphql_core(schema, document, viewers[who])
    assert comparable(fast) == comparable(expected)
    outcomes["errors" if fast.errors else "answered"] = (
        outcomes.get("errors" if fast.errors else "answered", 0) + 1
    )


def test_most_generated_queries_were_compared(outcomes: dict[str, int]) -> None:
    """The property above compared real answers, not mostly skipped ones."""
    compared = outcomes.get("answered", 0) + outcomes.get("errors", 0)
    assert compared >= sum(outcomes.values()) // 2, outcomes
    assert outcomes.get("errors", 0) > 0, outcomes
