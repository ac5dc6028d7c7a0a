"""Reading the AI request logs through GraphQL, gateway-only tokens, and their retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import openai
import pytest

from db import ai_request_logs
from db.ai_request_logs import RequestLogEntry, record
from db.models import AiRequestLog, User
from db.retention import purge_expired
from resolvers import global_id
from tests.daemon.fake_llm import FakeLlm, JsonReply
from tests.harness import GraphQLClient

pytestmark = pytest.mark.usefixtures("models")

LOGS = """query($first: Int, $after: String, $filter: AiRequestLogFilter) {
  aiRequestLogs(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id client userAgent sessionId provider model endpoint stream status costMicros
            durationMs startedAt usage { inputTokens outputTokens } user { username } chat { id } }
  }
}"""
CREATE_TOKEN = """mutation($scope: TokenScope) {
  createApiToken(input: {name: "claude code", scope: $scope}) { secret token { scope } }
}"""


async def log_as(username: str, client: str, started_at: datetime) -> None:
    user = await User.get(username=username)
    entry = RequestLogEntry(
        user_id=user.id,
        client=client,
        user_agent=f"{client.lower()}/1.0",
        session_id=None,
        provider="openai",
        model="gpt-fake",
        model_config_id=None,
        endpoint="chat.completions",
        stream=False,
        status=200,
        started_at=started_at,
        duration_ms=12,
    )
    await record(entry, None, None)


@pytest.fixture(scope="module")
async def logged(admin_token: str, member_token: str) -> datetime:
    """Three rows of the admin's, two of the member's, a minute apart, newest last."""
    at = datetime(2026, 1, 5, 12, tzinfo=UTC)
    for i, (user, client) in enumerate(
        [("admin", "CODEX"), ("member", "CLAUDE_CODE"), ("admin", "CURSOR"),
         ("member", "CLAUDE_CODE"), ("admin", "CODEX")]
    ):  # fmt: skip
        await log_as(user, client, at + timedelta(minutes=i))
    return at


async def test_members_see_only_their_own_logs_and_admins_everyones(
    gql: GraphQLClient, admin_token: str, member_token: str, logged: datetime
) -> None:
    window = {"from": logged.isoformat(), "to": (logged + timedelta(hours=1)).isoformat()}
    mine = (await gql.ok(LOGS, {"filter": window}, token=member_token))["aiRequestLogs"]
    assert mine["totalCount"] == 2
    assert {n["user"]["username"] for n in mine["nodes"]} == {"member"}
    everyone = (await gql.ok(LOGS, {"filter": window}, token=admin_token))["aiRequestLogs"]
    assert everyone["totalCount"] == 5
    starts = [n["startedAt"] for n in everyone["nodes"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    admin_id = global_id.encode("User", (await User.get(username="admin")).id)
    snooping = await gql.ok(LOGS, {"filter": {**window, "userId": admin_id}}, token=member_token)
    assert snooping["aiRequestLogs"]["totalCount"] == 0
    assert snooping["aiRequestLogs"]["nodes"] == []
    node = everyone["nodes"][0]["id"]
    found = await gql.ok(
        "query($id: ID!) { node(id: $id) { id } }", {"id": node}, token=member_token
    )
    assert found["node"] is None  # the admin's row is not the member's to see


async def test_logs_page_by_keyset_and_filter_by_several_clients(
    gql: GraphQLClient, admin_token: str, logged: datetime
) -> None:
    window = {"from": logged.isoformat(), "to": (logged + timedelta(hours=1)).isoformat()}
    seen: list[str] = []
    after = None
    while True:
        page = (
            await gql.ok(LOGS, {"first": 2, "after": after, "filter": window}, token=admin_token)
        )["aiRequestLogs"]
        seen += [n["client"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["CODEX", "CLAUDE_CODE", "CURSOR", "CLAUDE_CODE", "CODEX"]
    both = await gql.ok(
        LOGS, {"filter": {**window, "clients": ["CURSOR", "CLAUDE_CODE"]}}, token=admin_token
    )
    assert [n["client"] for n in both["aiRequestLogs"]["nodes"]] == [
        "CLAUDE_CODE", "CURSOR", "CLAUDE_CODE",
    ]  # fmt: skip
    clients = await gql.ok("{ aiClients }", token=admin_token)
    assert {"CODEX", "CLAUDE_CODE", "CURSOR"} <= set(clients["aiClients"])
    own = await gql.ok("{ aiClients }", token=await _member(gql))
    assert "CURSOR" not in own["aiClients"]


async def _member(gql: GraphQLClient) -> str:
    from tests.conftest import login_token

    return await login_token(gql, "member")


async def test_a_gateway_only_token_is_refused_by_graphql_and_accepted_by_the_gateway(
    gql: GraphQLClient, llm: FakeLlm, live_server: str, member_token: str
) -> None:
    created = await gql.ok(CREATE_TOKEN, {"scope": "GATEWAY"}, token=member_token)
    secret = created["createApiToken"]["secret"]
    assert created["createApiToken"]["token"]["scope"] == "GATEWAY"
    refused = await gql.error("{ viewer { user { username } } }", token=secret)
    assert refused["extensions"]["code"] == "UNAUTHENTICATED"
    assert "AI gateway" in refused["message"]
    llm.push(JsonReply(200, {"id": "c", "object": "chat.completion", "created": 1,
                             "model": "gpt-fake", "choices": [], "usage": None}))  # fmt: skip
    client = openai.AsyncOpenAI(base_url=f"{live_server}/v1", api_key=secret, max_retries=0)
    await client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "Hi"}]
    )
    plain = await gql.ok(CREATE_TOKEN, {"scope": None}, token=member_token)
    assert plain["createApiToken"]["token"]["scope"] == "ALL"


async def test_old_logs_are_purged_in_batches(member_token: str) -> None:
    old = datetime.now(UTC) - timedelta(days=ai_request_logs.RETENTION_DAYS + 1)
    for _ in range(3):
        await log_as("member", "ZED", old)
    assert await AiRequestLog.filter(client="ZED").count() == 3
    result = await purge_expired(batch=2)
    assert result.ran
    assert await AiRequestLog.filter(client="ZED").count() == 0


async def test_a_page_of_logs_costs_the_same_queries_at_any_size(
    gql: GraphQLClient, admin_token: str, logged: datetime
) -> None:
    from tests.harness import counted_queries

    window = {"from": logged.isoformat(), "to": (logged + timedelta(hours=1)).isoformat()}
    sent_for: dict[int, int] = {}
    for size in (1, 5):
        with counted_queries() as sent:
            await gql.ok(LOGS, {"first": size, "filter": window}, token=admin_token)
        sent_for[size] = len(sent)
    assert sent_for[1] == sent_for[5] <= 4  # token, page, count, users
