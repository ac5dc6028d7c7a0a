"""``costs``: a year's cost summary of a user with 1 000 000 messages vs one with 1 000.

Both sides are the same GraphQL query over HTTP, each with its own user's token:
the "graphql" column is the heavy user, the "baseline" column the light one.
Summaries read the day rollups, never the messages, so the ratio of their p50
latencies should stay near 1 (the goal is ≤ 1.5) however long the history is.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from bench.benchmark import Benchmark, Fixtures, RequestPair, graphql_post
from db.seed import seed_costed_history
from db.vocabulary import TokenKind
from resolvers.accounts import create_user
from resolvers.tokens import issue_token

QUERY = """query Costs($from: DateTime, $to: DateTime) {
  costSummary(from: $from, to: $to) {
    from to totalCostMicros pricedCount unpricedCount
    usage { inputTokens outputTokens reasoningTokens cacheReadTokens cacheWriteTokens }
    byModel { model provider costMicros count }
    byDay { day costMicros }
    usageLimit { source period limitMicros spentMicros remainingMicros resetsAt }
    byChat(first: 10) { nodes { title costMicros count } pageInfo { hasNextPage } }
  }
}"""
# The heavy user: 2 000 chats of 500 messages, half of them costed assistant
# messages, over a year; the light one: 10 chats of 100 over the same year.
HEAVY = (2_000, 500)
LIGHT = (10, 100)
HISTORY_DAYS = 365
LIGHT_USER = "bench-light"
LIGHT_PASSWORD = "bench-password-2"


def year_window(now: datetime | None = None) -> dict[str, str]:
    """The last 365 UTC days, today included: the whole seeded history."""
    today = (now or datetime.now(UTC)).date()
    to = datetime.combine(today + timedelta(days=1), time(), tzinfo=UTC)
    return {"from": (to - timedelta(days=HISTORY_DAYS)).isoformat(), "to": to.isoformat()}


async def prepare(fixtures: Fixtures) -> RequestPair:
    await seed_costed_history(
        fixtures.database_url, fixtures.user.username, *HEAVY, days=HISTORY_DAYS
    )
    light = await create_user(LIGHT_USER, LIGHT_PASSWORD)
    issued = await issue_token(light, TokenKind.API, LIGHT_USER, None)
    await seed_costed_history(fixtures.database_url, LIGHT_USER, *LIGHT, days=HISTORY_DAYS)
    window = year_window()
    return RequestPair(
        graphql=graphql_post(QUERY, fixtures.token, window),
        baseline=graphql_post(QUERY, issued.secret, window),
    )


BENCHMARK = Benchmark(
    name="costs",
    summary="costSummary over a year for a 1 000 000-message user (graphql) vs a "
    "1 000-message user (baseline column), both through GraphQL; compare p50 latency",
    prepare=prepare,
    baseline_routes=[],
    baseline_is_graphql=True,
)
