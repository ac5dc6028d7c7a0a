"""The compiled query path answers exactly what graphql-core answers.

Each query runs twice on the same data: through the compiled plan (which must
exist, so the fast path is what is being tested) and through graphql-core's
executor; the two ``data`` must be equal. Fragments, aliases, unions, nullable
and absent values, resolvers with and without arguments, and variables are all
covered.
"""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import strawberry
from graphql import OperationDefinitionNode, execute
from graphql.execution.values import get_variable_values
from starlette.applications import Starlette

from db.models import Chat, ChatMessage, ChatQueuedMessage, User
from db.vocabulary import MessageRole, TokenKind
from resolvers import global_id
from resolvers.accounts import hash_password
from resolvers.context import RequestContext
from resolvers.tokens import authenticate, issue_token
from schema.engine.executor import FastExecutor, comparable
from schema.engine.run import coerce_simple, simple_variables
from schema.limits import parse_cached
from tests.harness import PASSWORD

PARTS = [
    {"type": "text", "text": "hello"},
    {"type": "reasoning", "text": "thinking"},
    {"type": "tool-call", "toolCallId": "c1", "toolName": "read", "args": {"path": "a.py"}},
    {"type": "tool-result", "toolCallId": "c1", "toolName": "read", "result": [1, "x"]},
    {"type": "file-reference", "fileName": "a.py", "startLine": 3, "endLine": None},
    {"type": "source", "url": "https://example.com", "title": None},
]
ALL_PARTS = """
fragment P on MessagePart {
  __typename
  ... on TextPart { text }
  ... on ReasoningPart { text }
  ... on ToolCallPart { toolCallId toolName args }
  ... on ToolResultPart { toolCallId toolName result isError }
  ... on FileReferencePart { fileName startLine endLine content }
  ... on SourcePart { url title }
}"""
QUERIES: list[tuple[str, dict[str, Any]]] = [
    (
        """query Page($id: ID!) { chat(id: $id) { messages(last: 50) {
          edges { cursor node { id role createdAt parts { __typename ... on TextPart { text } } } }
        } } }""",
        {},
    ),
    (
        """query($id: ID!, $n: Int, $after: String) { chat(id: $id) {
          id title status planMode archived pinOrder labels hasUnread createdAt updatedAt
          lastError { kind message }
          owner { username role }
          parent { id }
          children { id title owner { username } }
          queuedMessages { id createdAt parts { ...P } }
          older: messages(first: $n, after: $after) {
            nodes { id role usage { inputTokens outputTokens cacheReadTokens }
              createdBy { username } costMicros runtimeMs parts { ...P } }
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          }
          newer: messages(last: 2) { edges { cursor } pageInfo { startCursor } }
        } }"""
        + ALL_PARTS,
        {"n": 3, "after": None},
    ),
    (
        """query($id: ID!) { viewer { user { id username name email role disabled } }
          chat(id: $id) { __typename id ...C } }
        fragment C on Chat { messages { edges { node { __typename id parts { ...P } } } } }"""
        + ALL_PARTS,
        {},
    ),
    (
        """query($id: ID!) { chats(first: 5) { edges { cursor node { id title
          children { id } } } pageInfo { hasNextPage endCursor } }
          missing: chat(id: "Q2hhdDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA") { id }
          node(id: $id) { __typename id ... on Chat { title } } }""",
        {},
    ),
]


async def _person() -> tuple[User, str]:
    user = await User.create(
        username=f"f{uuid.uuid4().hex[:12]}", password_hash=await hash_password(PASSWORD)
    )
    issued = await issue_token(
        user, TokenKind.SESSION, "session", datetime.now(UTC) + timedelta(days=1)
    )
    return user, issued.secret


async def _context(secret: str) -> RequestContext:
    viewer, token = await authenticate(secret)
    return RequestContext(request_id="test", viewer=viewer, token=token)


def _schema(app: Starlette) -> Any:
    for route in app.routes:
        if getattr(route, "path", None) == "/graphql":
            return route.endpoint.schema  # type: ignore[attr-defined]
    raise AssertionError("no /graphql route")


@pytest.fixture
async def chat_gid(app: Starlette) -> tuple[str, str]:
    user, secret = await _person()
    now = datetime.now(UTC)
    root_id = uuid.uuid4()
    await Chat.create(
        id=root_id,
        owner=user,
        root_id=root_id,
        title="root",
        labels={"k": "v"},
        last_error={"kind": "timeout", "message": "boom"},
        updated_at=now,
    )
    child_id = uuid.uuid4()
    await Chat.create(
        id=child_id, owner=user, parent_id=root_id, root_id=root_id, title="child", updated_at=now
    )
    for i in range(7):
        assistant = i % 2 == 1
        await ChatMessage.create(
            chat_id=root_id,
            role=MessageRole.ASSISTANT if assistant else MessageRole.USER,
            parts=PARTS[i % len(PARTS) :] or PARTS,
            created_by_id=None if assistant else user.id,
            input_tokens=10 * i if assistant else None,
            output_tokens=i if assistant else None,
            total_cost_micros=123 if assistant else None,
            runtime_ms=45 if assistant else None,
        )
    await ChatQueuedMessage.create(chat_id=root_id, parts=PARTS[:1], created_by_id=user.id)
    return global_id.encode("Chat", root_id), secret


@pytest.mark.parametrize("index", range(len(QUERIES)))
async def test_compiled_plan_answers_like_graphql_core(
    app: Starlette, chat_gid: tuple[str, str], index: int
) -> None:
    query, extra = QUERIES[index]
    gid, secret = chat_gid
    variables = {"id": gid, **extra}
    schema = _schema(app)
    core_schema = schema._schema
    document = parse_cached(query, 5000)
    executor: FastExecutor = schema.fast
    compiled = executor.plan(core_schema, document, None)
    assert compiled is not None, "the query must take the compiled path"

    fast = await executor.run(compiled, core_schema, variables, await _context(secret))
    assert fast.errors is None, fast.errors
    result = execute(
        core_schema, document, context_value=await _context(secret), variable_values=variables
    )
    expected = await result if inspect.isawaitable(result) else result
    assert expected.errors is None, expected.errors
    assert fast.data == expected.data


async def test_the_fast_lane_answers_what_strawberry_answers(
    app: Starlette, chat_gid: tuple[str, str]
) -> None:
    """Through the lane (caches, limits, cost) and through Strawberry's own path."""
    gid, secret = chat_gid
    schema = _schema(app)
    query, extra = QUERIES[1]
    variables = {"id": gid, **extra}
    context = await _context(secret)

    async def make_context() -> Any:
        return context

    answer = await schema.fast_lane.answer(query, variables, None, make_context)
    assert answer is not None
    result = await schema.execute(query, variables, context_value=await _context(secret))
    assert result.errors is None
    assert answer.data == result.data
    assert answer.cost == result.extensions["cost"]


@pytest.mark.parametrize(
    "inputs",
    [
        {"id": "Q2hhdDox", "n": 3, "s": "x", "b": True},
        {"id": "Q2hhdDox", "n": None, "s": None, "b": False},
        {"id": "Q2hhdDox"},
        {"id": "Q2hhdDox", "n": 2**31},
        {"id": "Q2hhdDox", "n": True},
        {"id": 7},
        {"id": None},
        {},
    ],
)
async def test_simple_variables_coerce_like_graphql_core(
    app: Starlette, inputs: dict[str, Any]
) -> None:
    core_schema = _schema(app)._schema
    query = "query($id: ID!, $n: Int, $s: String, $b: Boolean) { chat(id: $id) { id } }"
    operation = parse_cached(query, 5000).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    spec = simple_variables(core_schema, operation)
    assert spec is not None
    fast = coerce_simple(spec, inputs)
    expected = get_variable_values(core_schema, operation.variable_definitions or (), inputs)
    if fast is None:  # left to graphql-core: it coerces or reports the value
        assert isinstance(expected, list) or expected.coerced != inputs
        return
    assert not isinstance(expected, list)
    assert fast.coerced == expected.coerced

    def described(sources: dict[str, Any]) -> dict[str, Any]:
        # Signatures are rebuilt per call (their wrapper types differ by identity).
        return {
            k: (v.signature.name, str(v.signature.type), v.signature.default, v.value)
            for k, v in sources.items()
        }

    assert described(fast.sources) == described(expected.sources)


# --- field errors: located and nulled as graphql-core does ------------------------


@strawberry.type
class Item:
    n: int

    @strawberry.field
    def nullable(self) -> int | None:
        if self.n % 2:
            raise ValueError(f"odd {self.n}")
        return self.n

    @strawberry.field
    def required(self) -> int:
        if self.n == 3:
            raise ValueError("three")
        return self.n

    @strawberry.field
    async def later(self) -> int | None:
        if self.n == 2:
            raise ValueError("two, later")
        return self.n

    @strawberry.field
    async def later_required(self) -> int:
        if self.n == 1:
            raise ValueError("one, later")
        return self.n


@strawberry.type
class Failing:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(n=i) for i in range(5)]

    @strawberry.field
    def maybe_items(self) -> list[Item | None] | None:
        return [Item(n=i) for i in range(5)]

    @strawberry.field
    async def boom(self) -> int:
        raise ValueError("root")

    @strawberry.field
    def nested(self) -> Failing | None:
        return Failing()


FAILING = strawberry.Schema(query=Failing)
ERROR_QUERIES = [
    "{ maybeItems { n nullable } }",
    "{ maybeItems { n required } }",
    "{ maybeItems { n later laterRequired } }",
    "{ items { n required } maybeItems { n } }",
    "{ boom maybeItems { n } }",
    "{ nested { items { later } x: maybeItems { required } } }",
    "{ nested { nested { items { laterRequired } } } maybeItems { nullable } }",
    "{ maybeItems { ...F nullable } } fragment F on Item { nullable n ...F }",
    "{ a: maybeItems { required later } b: maybeItems { nullable } }",
]


@pytest.mark.parametrize("query", ERROR_QUERIES)
async def test_field_errors_are_located_and_nulled_like_graphql_core(query: str) -> None:
    core_schema = FAILING._schema
    document = parse_cached(query, 5000)
    executor = FastExecutor()
    compiled = executor.plan(core_schema, document, None)
    assert compiled is not None
    fast = await executor.run(compiled, core_schema, None, None)
    result = execute(core_schema, document)
    expected = await result if inspect.isawaitable(result) else result
    assert expected.errors
    assert comparable(fast) == comparable(expected)
