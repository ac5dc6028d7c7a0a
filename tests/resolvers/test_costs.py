"""Cost queries as a client sees them: figures that add up to what was charged,
who may see whose spend, ranges checked, pages that walk every row once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db.cost_rollups import DayRange, UsageSums
from db.costing import Usage
from db.models import Chat, ModelConfig, Provider, User
from db.vocabulary import TokenKind
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.costs import DELETED_CHAT_TITLE, chat_cost
from resolvers.errors import ApiError
from resolvers.tokens import issue_token
from tests.cost_history import (
    NO_CHAT,
    ROOT_A,
    ROOT_B,
    SUB_A,
    SUB_B,
    SUB_SUB_A,
    Family,
    Model,
    Spent,
    all_time,
    expected,
    histories,
    models,
    new_family,
    ranges,
    record,
    subtree,
)
from tests.harness import GraphQLClient, counted_queries

USAGE = "usage { inputTokens outputTokens reasoningTokens cacheReadTokens cacheWriteTokens }"
SUMMARY = f"""
totalCostMicros pricedCount unpricedCount {USAGE}
byModel {{ modelConfig {{ id }} model provider costMicros count {USAGE} }}
byDay {{ day costMicros }}
"""
COST_SUMMARY = f"""query($from: DateTime, $to: DateTime, $user: ID) {{
  costSummary(from: $from, to: $to, userId: $user) {{ from to {SUMMARY} }}
}}"""
BY_CHAT = f"""query($from: DateTime, $to: DateTime, $user: ID, $n: Int, $after: String) {{
  costSummary(from: $from, to: $to, userId: $user) {{
    byChat(first: $n, after: $after) {{
      edges {{ cursor node {{ chat {{ id }} title costMicros count {USAGE} }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""
USER_COSTS = f"""query($from: DateTime, $to: DateTime, $n: Int, $after: String) {{
  userCosts(from: $from, to: $to, first: $n, after: $after) {{
    nodes {{ user {{ username }} costMicros count chatCount {USAGE} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
CHAT_COST = f"""query($id: ID!) {{
  node(id: $id) {{ ... on Chat {{ cost {{ chat {{ id }} title costMicros count {USAGE} }} }} }}
}}"""


@pytest.fixture(scope="module")
async def table(admin_token: str, member_token: str) -> list[Model]:
    """Three configs; the admin and the member exist first (sign-up closes after)."""
    provider = await Provider.first()
    assert provider is not None
    ids = []
    for name in ("gpt-a", "claude-b", "unpriced-c"):
        config = await ModelConfig.create(
            provider=provider, model=name, display_name=name, context_limit=100_000
        )
        ids.append(config.id)
    return models(ids)


async def signed_in(family: Family) -> str:
    expires = datetime.now(UTC) + timedelta(days=1)
    return (await issue_token(family.user, TokenKind.SESSION, "s", expires)).secret


def usage_of(sums: UsageSums) -> dict[str, int]:
    return {
        "inputTokens": sums.input_tokens,
        "outputTokens": sums.output_tokens,
        "reasoningTokens": sums.reasoning_tokens,
        "cacheReadTokens": sums.cache_read_tokens,
        "cacheWriteTokens": sums.cache_write_tokens,
    }


def key(gid: str | None) -> uuid.UUID | None:
    if gid is None:
        return None
    decoded = global_id.decode(gid)
    assert decoded is not None
    return uuid.UUID(decoded[1])


def iso(at: datetime) -> str:
    return at.isoformat()


async def by_chat_pages(
    gql: GraphQLClient, token: str, variables: dict[str, Any], size: int
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        data = await gql.ok(BY_CHAT, {**variables, "n": size, "after": after}, token=token)
        connection = data["costSummary"]["byChat"]
        assert len(connection["edges"]) <= size
        nodes.extend(e["node"] for e in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("paging never ended")


@settings(max_examples=15, deadline=None)
@given(history=histories(), span=ranges, page_size=st.integers(1, 3))
async def test_summary_equals_a_sum_over_the_charges(
    gql: GraphQLClient,
    table: list[Model],
    history: list[Spent],
    span: tuple[datetime, datetime],
    page_size: int,
) -> None:
    family = await new_family()
    await record(family, history, table)
    token = await signed_in(family)
    want = expected(family, history, table, DayRange.covering(*span))
    variables = {"from": iso(span[0]), "to": iso(span[1])}

    got = (await gql.ok(COST_SUMMARY, variables, token=token))["costSummary"]
    assert got["totalCostMicros"] == want.totals.cost_micros
    assert (got["pricedCount"], got["unpricedCount"]) == (
        want.totals.priced_count,
        want.totals.unpriced_count,
    )
    assert got["usage"] == usage_of(want.totals)
    assert {key((m["modelConfig"] or {}).get("id")): m["costMicros"] for m in got["byModel"]} == {
        k: v.cost_micros for k, v in want.by_model.items()
    }
    assert {key((m["modelConfig"] or {}).get("id")): m["usage"] for m in got["byModel"]} == {
        k: usage_of(v) for k, v in want.by_model.items()
    }
    costs = [m["costMicros"] for m in got["byModel"]]
    assert costs == sorted(costs, reverse=True)
    assert {d["day"]: d["costMicros"] for d in got["byDay"]} == {
        d.isoformat(): cost for d, cost in want.by_day.items()
    }

    chats = await by_chat_pages(gql, token, variables, page_size)
    assert {key(c["chat"]["id"]): (c["costMicros"], c["count"]) for c in chats} == {
        k: (v.cost_micros, v.count) for k, v in want.by_root.items()
    }
    assert [c["costMicros"] for c in chats] == sorted(
        (c["costMicros"] for c in chats), reverse=True
    )
    titles = {key(c["chat"]["id"]): c["title"] for c in chats}
    assert titles.get(family.chats[ROOT_A], "chat 0") == "chat 0"


async def test_the_default_range_is_the_last_30_utc_days(
    gql: GraphQLClient, table: list[Model]
) -> None:
    family = await new_family()
    now = datetime.now(UTC)
    await record(
        family,
        [
            Spent(NO_CHAT, 0, now - timedelta(minutes=1), Usage(1_000_000, 0)),
            Spent(NO_CHAT, 0, now - timedelta(days=29), Usage(2_000_000, 0)),
            Spent(NO_CHAT, 0, now - timedelta(days=31), Usage(4_000_000, 0)),
        ],
        table,
    )
    token = await signed_in(family)
    data = await gql.ok(
        "{ viewer { cost { from to totalCostMicros byDay { day } } } }", token=token
    )
    cost = data["viewer"]["cost"]
    assert cost["totalCostMicros"] == 1_250_000 + 2_500_000  # $1.25 and $2.50 per Mtok
    assert len(cost["byDay"]) == 30
    assert cost["byDay"][-1]["day"] == now.date().isoformat()
    assert cost["to"].startswith((now.date() + timedelta(days=1)).isoformat())


VIEWER_COST = """query($from: DateTime, $to: DateTime) {
  viewer { cost(from: $from, to: $to) { totalCostMicros } }
}"""


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"from": "2026-03-02T00:00:00+00:00", "to": "2026-03-02T00:00:00+00:00"}, "to"),
        ({"from": "2026-03-03T00:00:00+00:00", "to": "2026-03-02T00:00:00+00:00"}, "to"),
        ({"from": "2025-03-01T00:00:00+00:00", "to": "2026-03-03T00:00:00+00:00"}, "from"),
        ({"from": "2999-01-01T00:00:00+00:00"}, "from"),
        ({"to": "0001-01-01T00:00:00+00:00"}, "to"),
        ({"from": "2026-03-01T00:00:00"}, "from"),
    ],
)
async def test_a_bad_range_names_the_argument(
    gql: GraphQLClient, member_token: str, variables: dict[str, str], field: str
) -> None:
    for query in (COST_SUMMARY, VIEWER_COST):
        result = await gql(query, variables, token=member_token)
        (error,) = result["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == field


async def test_a_year_is_allowed(gql: GraphQLClient, member_token: str) -> None:
    variables = {"from": "2025-03-02T00:00:00+00:00", "to": "2026-03-02T00:00:00+00:00"}
    data = await gql.ok(COST_SUMMARY, variables, token=member_token)
    assert len(data["costSummary"]["byDay"]) == 365


async def test_another_users_costs_need_view_all_costs(
    gql: GraphQLClient, table: list[Model], admin_token: str, member_token: str
) -> None:
    family = await new_family()
    history = [Spent(SUB_B, 1, datetime(2026, 3, 3, tzinfo=UTC), Usage(10_000, 2_000))]
    await record(family, history, table)
    other = global_id.encode("User", family.user.id)
    variables = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-05T00:00:00Z", "user": other}

    refused = await gql(COST_SUMMARY, variables, token=member_token)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    got = (await gql.ok(COST_SUMMARY, variables, token=admin_token))["costSummary"]
    assert got["totalCostMicros"] == 10_000 * 3 + 2_000 * 15  # $3 and $15 per Mtok
    # the admin sees the member's chat by title, not the chat itself (not theirs)
    (chat,) = (await gql.ok(BY_CHAT, variables, token=admin_token))["costSummary"]["byChat"][
        "edges"
    ]
    assert chat["node"]["chat"] is None
    assert chat["node"]["title"] == "chat 3"

    unknown = {**variables, "user": global_id.encode("User", uuid.uuid4())}
    missing = await gql(COST_SUMMARY, unknown, token=admin_token)
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # a member naming themself needs no permission
    member = await User.get(username="member")
    own = {**variables, "user": global_id.encode("User", member.id)}
    assert (await gql.ok(COST_SUMMARY, own, token=member_token))["costSummary"][
        "totalCostMicros"
    ] == 0


async def test_user_costs_walk_users_by_spend(
    gql: GraphQLClient, table: list[Model], admin_token: str, member_token: str
) -> None:
    # a month no other test charges in, so these are the only spenders
    day = datetime(2025, 6, 10, 12, tzinfo=UTC)
    spends = {0: 3, 1: 1, 2: 3, 3: 2}  # equal spends are ordered by user id
    families = {}
    for i, units in spends.items():
        family = await new_family(f"uc{i}-")
        slots = [ROOT_A, SUB_A, ROOT_B]
        await record(
            family,
            [Spent(slots[u % 3], 3, day, Usage(1_000_000, 0)) for u in range(units)],
            table,
        )
        families[family.user.username] = (family, units)
    variables = {"from": "2025-06-01T00:00:00Z", "to": "2025-07-01T00:00:00Z"}

    refused = await gql(USER_COSTS, variables, token=member_token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    seen: list[dict[str, Any]] = []
    after = None
    while True:
        data = await gql.ok(USER_COSTS, {**variables, "n": 1, "after": after}, token=admin_token)
        seen.extend(data["userCosts"]["nodes"])
        if not data["userCosts"]["pageInfo"]["hasNextPage"]:
            break
        after = data["userCosts"]["pageInfo"]["endCursor"]
    names = [n["user"]["username"] for n in seen]
    assert sorted(names) == sorted(families)
    ordered = sorted(families.values(), key=lambda fu: (-fu[1], fu[0].user.id))
    assert names == [f.user.username for f, _ in ordered]
    for node in seen:
        family, units = families[node["user"]["username"]]
        assert node["costMicros"] == units * 500_000  # $0.50 per Mtok
        assert node["count"] == units
        # ROOT_A (SUB_A rolls into it), then ROOT_B
        assert node["chatCount"] == (2 if units >= 3 else 1)
        assert node["usage"]["inputTokens"] == units * 1_000_000

    bad = await gql(USER_COSTS, {**variables, "after": "not-a-cursor"}, token=admin_token)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert bad["errors"][0]["extensions"]["field"] == "after"


async def test_chat_cost_rolls_sub_agents_into_the_root(
    gql: GraphQLClient, table: list[Model]
) -> None:
    family = await new_family()
    at = datetime(2026, 3, 4, 8, tzinfo=UTC)
    history = [
        Spent(slot, model, at - timedelta(days=400 * (slot == SUB_SUB_A)), Usage(5_000, 700))
        for slot in (ROOT_A, SUB_A, SUB_SUB_A, ROOT_B, SUB_B)
        for model in (0, 1, 2)
    ]
    await record(family, history, table)
    token = await signed_in(family)
    for slot in (ROOT_A, SUB_A, SUB_SUB_A, ROOT_B, SUB_B):
        gid = global_id.encode("Chat", family.chats[slot])
        cost = (await gql.ok(CHAT_COST, {"id": gid}, token=token))["node"]["cost"]
        want = all_time(family, history, table, subtree(slot))
        assert (cost["costMicros"], cost["count"]) == (want.cost_micros, want.count), slot
        assert cost["usage"] == usage_of(want)
        assert cost["chat"]["id"] == gid
        assert cost["title"] == f"chat {slot}"
    root = all_time(family, history, table, subtree(ROOT_A))
    assert root.count == 9  # the root, its sub-agent and that one's sub-agent (a year ago)


async def test_another_users_chat_cost_is_not_found(
    gql: GraphQLClient, table: list[Model], member_token: str
) -> None:
    family = await new_family()
    await record(family, [Spent(ROOT_A, 0, datetime(2026, 3, 4, tzinfo=UTC), Usage(9, 9))], table)
    gid = global_id.encode("Chat", family.chats[ROOT_A])
    assert (await gql.ok(CHAT_COST, {"id": gid}, token=member_token))["node"] is None
    member = await User.get(username="member")
    chat = await Chat.get(id=family.chats[ROOT_A])
    with pytest.raises(ApiError) as raised:
        await chat_cost(RequestContext(request_id="t", viewer=member), chat)
    assert raised.value.code == "NOT_FOUND"


async def test_a_deleted_chat_keeps_its_spend_as_deleted_chat(
    gql: GraphQLClient, table: list[Model]
) -> None:
    family = await new_family()
    at = datetime(2026, 3, 4, tzinfo=UTC)
    await record(family, [Spent(SUB_B, 0, at, Usage(4_000, 400))], table)
    await Chat.filter(id=family.chats[ROOT_B]).delete()
    token = await signed_in(family)
    variables = {"from": "2026-03-04T00:00:00Z", "to": "2026-03-05T00:00:00Z"}
    (edge,) = (await gql.ok(BY_CHAT, variables, token=token))["costSummary"]["byChat"]["edges"]
    assert edge["node"]["chat"] is None
    assert edge["node"]["title"] == DELETED_CHAT_TITLE
    assert edge["node"]["costMicros"] == 5_000 + 4_000  # 4000 × $1.25/M and 400 × $10/M


FULL = f"""query($from: DateTime, $to: DateTime) {{
  costSummary(from: $from, to: $to) {{
    {SUMMARY}
    byModel {{ modelConfig {{ id model }} }}
    byChat(first: 10) {{ nodes {{ chat {{ id title }} title costMicros }} }}
    usageLimit {{ source spentMicros remainingMicros }}
  }}
}}"""


async def test_a_summary_costs_the_same_statements_for_any_number_of_messages(
    gql: GraphQLClient, table: list[Model]
) -> None:
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    variables = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-05T00:00:00Z"}
    counts = []
    for n in (4, 400):
        family = await new_family()
        history = [
            Spent(
                (ROOT_A, SUB_A, ROOT_B, SUB_B)[i % 4],
                i % 4,
                at + timedelta(hours=i % 60),
                Usage(100, 10),
            )
            for i in range(n)
        ]
        await record(family, history, table, messages=True)
        token = await signed_in(family)
        await gql.ok("{ viewer { user { id } } }", token=token)  # its lastUsedAt write
        with counted_queries() as sent:
            result = await gql(FULL, variables, token=token)
        assert "errors" not in result, result
        assert len(result["data"]["costSummary"]["byChat"]["nodes"]) == 2
        assert not any("chat_messages" in q for q in sent), "a summary never reads messages"
        counts.append(len(sent))
    assert counts[0] == counts[1]
    # totals, by model, its configs, by chat, its chats, by day, limit settings + status
    # (the token was verified by the request before, and is cached)
    assert counts[0] == 8


LIST_COSTS = """query($n: Int) {
  chats(first: $n) {
    nodes { id cost { costMicros count } children { id cost { costMicros count } } }
  }
}"""


async def test_chat_costs_of_a_list_cost_the_same_statements_for_any_length(
    gql: GraphQLClient, table: list[Model]
) -> None:
    at = datetime(2026, 3, 4, 8, tzinfo=UTC)
    family = await new_family()
    history = [Spent(slot, 0, at, Usage(1_000 * (slot + 1), 10)) for slot in (ROOT_A, SUB_A)]
    history += [Spent(slot, 1, at, Usage(2_000, 20)) for slot in (ROOT_B, SUB_B)]
    await record(family, history, table)
    for i in range(4):
        root, child = uuid.uuid4(), uuid.uuid4()
        await Chat.create(id=root, owner=family.user, root_id=root, title=f"r{i}", updated_at=at)
        await Chat.create(
            id=child, owner=family.user, parent_id=root, root_id=root, title="s", updated_at=at
        )  # four more families, never charged
    token = await signed_in(family)
    await gql.ok("{ viewer { user { id } } }", token=token)  # its lastUsedAt write
    counts = []
    for n in (1, 6):
        with counted_queries() as sent:
            data = await gql.ok(LIST_COSTS, {"n": n}, token=token)
        assert len(data["chats"]["nodes"]) == n
        counts.append(len(sent))
    assert counts[0] == counts[1]
    costs = {key(c["id"]): c["cost"]["costMicros"] for c in data["chats"]["nodes"]}
    for c in data["chats"]["nodes"]:
        costs.update({key(s["id"]): s["cost"]["costMicros"] for s in c["children"]})
    for slot in (ROOT_A, SUB_A, ROOT_B, SUB_B):
        want = all_time(family, history, table, subtree(slot))
        assert costs[family.chats[slot]] == want.cost_micros, slot
    assert sum(1 for v in costs.values() if v == 0) == 8  # the four new roots and sub-agents


async def test_gateway_spend_is_its_own_line_in_by_chat(
    gql: GraphQLClient, table: list[Model]
) -> None:
    # Gateway requests settle under the nil chat id: one line, not a "deleted chat".
    from tortoise.transactions import in_transaction

    from db import spend
    from db.vocabulary import NIL_UUID
    from resolvers.costs import GATEWAY_TITLE

    family = await new_family()
    model = table[0]
    async with in_transaction() as conn:
        await spend.settle(
            conn,
            None,
            spend.Charge(
                user_id=family.user.id,
                usage=Usage(4_000, 400),
                prices=model.prices,
                model_config_id=model.config_id,
                provider=model.provider,
                model=model.name,
                chat_id=NIL_UUID,
                at=datetime(2026, 3, 4, 12, tzinfo=UTC),
            ),
        )
    token = await signed_in(family)
    variables = {"from": "2026-03-04T00:00:00Z", "to": "2026-03-05T00:00:00Z"}
    (edge,) = (await gql.ok(BY_CHAT, variables, token=token))["costSummary"]["byChat"]["edges"]
    assert (edge["node"]["chat"], edge["node"]["title"]) == (None, GATEWAY_TITLE)
