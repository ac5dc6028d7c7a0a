"""``viewer``: the cheapest authenticated query, one token lookup and one field.

It measures the fixed cost every GraphQL request pays (middleware, context,
auth through the ORM, parse/validate, execute, encode) against a bare route
that runs the same token SELECT with asyncpg and returns the same JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.benchmark import (
    Benchmark,
    Fixtures,
    HttpRequest,
    RequestPair,
    bearer,
    graphql_post,
    json_response,
    pool_of,
)
from db.vocabulary import TOKEN_TOUCH_INTERVAL_S
from resolvers.tokens import TOKEN_PREFIX, hash_token
from resolvers.tokens import TOKEN_SQL as RESOLVER_TOKEN_SQL

QUERY = "{ viewer { user { username } } }"
BASELINE_PATH = "/viewer"

# What ``resolvers.tokens.authenticate`` sends.
TOKEN_SQL = RESOLVER_TOKEN_SQL
# The at-most-once-a-minute ``last_used_at`` touch that ``authenticate`` does too.
TOUCH_SQL = 'UPDATE "api_tokens" SET "last_used_at"=$1 WHERE "id"=$2'

SIGNED_OUT: dict[str, object] = {"viewer": None}


async def baseline_viewer(request: Request) -> Response:
    """The same checks as ``authenticate`` on the raw row; no ORM objects, no GraphQL."""
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw.startswith(TOKEN_PREFIX):
        return json_response(SIGNED_OUT)
    pool = pool_of(request)
    row = await pool.fetchrow(TOKEN_SQL, hash_token(raw))
    now = datetime.now(UTC)
    if (
        row is None
        or row["t_revoked_at"] is not None
        or (row["t_expires_at"] is not None and row["t_expires_at"] <= now)
        or row["u_disabled"]
    ):
        return json_response(SIGNED_OUT)
    last_used = row["t_last_used_at"]
    if last_used is None or last_used < now - timedelta(seconds=TOKEN_TOUCH_INTERVAL_S):
        await pool.execute(TOUCH_SQL, now, row["t_id"])
    return json_response({"viewer": {"user": {"username": row["u_username"]}}})


async def prepare(fixtures: Fixtures) -> RequestPair:
    """Nothing to seed beyond the shared user and token."""
    return RequestPair(
        graphql=graphql_post(QUERY, fixtures.token),
        baseline=HttpRequest("GET", BASELINE_PATH, bearer(fixtures.token)),
    )


BENCHMARK = Benchmark(
    name="viewer",
    summary="{ viewer { user { username } } } with a bearer token vs one token SELECT",
    prepare=prepare,
    baseline_routes=[Route(BASELINE_PATH, baseline_viewer, methods=["GET"])],
)
