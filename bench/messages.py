"""``messages`` (P1) and ``messages-deep`` (P3): the newest page of a chat's history.

P1 compares the GraphQL page of 50 messages with a bare route that runs the same
token check, ownership check and page SELECT and returns the same JSON;
``--baseline select-only`` with one that runs the page SELECT alone, unauthenticated
(the physical limit of this stack). P3 runs
the same GraphQL query against a 100 000-message chat and a 10-message one, to
show that the keyset page does not slow down as the history grows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

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
from bench.viewer import TOKEN_SQL
from db.keyset import encode_cursor
from db.parts import from_json
from db.seed import seed_chats
from resolvers import global_id
from resolvers.tokens import hash_token

QUERY = """query Page($id: ID!) {
  chat(id: $id) {
    messages(last: 50) {
      edges { cursor node { id role createdAt parts { __typename ... on TextPart { text } } } }
    }
  }
}"""
BASELINE_PATH = "/messages/{chat_id}"
SELECT_ONLY_PATH = "/messages-select-only/{chat_id}"
PAGE_SQL = (
    "SELECT id, role, parts::text AS parts, created_at FROM chat_messages "
    "WHERE chat_id = $1 AND NOT deleted AND visibility <> 'model' ORDER BY id DESC LIMIT 51"
)
_TYPENAMES = {
    "TextPart": "TextPart",
    "ReasoningPart": "ReasoningPart",
    "ToolCallPart": "ToolCallPart",
    "ToolResultPart": "ToolResultPart",
    "FilePart": "FilePart",
    "FileReferencePart": "FileReferencePart",
    "SourcePart": "SourcePart",
}


def _part(raw: dict[str, object]) -> dict[str, object]:
    kind = type(from_json(raw)).__name__
    if kind == "TextPart":
        return {"__typename": kind, "text": raw["text"]}
    return {"__typename": _TYPENAMES[kind]}


async def baseline_page(request: Request) -> Response:
    """The three statements a naive server runs: token, ownership, page."""
    _, _, raw = request.headers.get("authorization", "").partition(" ")
    pool = pool_of(request)
    token = await pool.fetchrow(TOKEN_SQL, hash_token(raw.strip()))
    if token is None:
        return json_response({"chat": None})
    chat_id = request.path_params["chat_id"]
    owned = await pool.fetchval(
        "SELECT 1 FROM chats WHERE id = $1 AND owner_id = $2",
        chat_id,
        token["u_id"],
    )
    if not owned:
        return json_response({"chat": None})
    return await _page(pool, chat_id)


async def select_only_page(request: Request) -> Response:
    """The physical limit of this stack: the page SELECT alone, no auth at all."""
    return await _page(pool_of(request), request.path_params["chat_id"])


async def _page(pool: Any, chat_id: str) -> Response:
    import orjson

    rows = list(reversed((await pool.fetch(PAGE_SQL, chat_id))[:50]))
    edges = [
        {
            "cursor": encode_cursor([row["id"]]),
            "node": {
                "id": global_id.encode("Message", row["id"]),
                "role": row["role"].upper(),
                "createdAt": row["created_at"].isoformat(),
                "parts": [_part(p) for p in orjson.loads(row["parts"])],
            },
        }
        for row in rows
    ]
    return json_response({"chat": {"messages": {"edges": edges}}})


def _select_only(request: HttpRequest) -> HttpRequest:
    chat_id = request.path.rsplit("/", 1)[1]
    return replace(request, path=SELECT_ONLY_PATH.format(chat_id=chat_id), headers={})


def _pair(fixtures: Fixtures, chat_id: str, query: str = QUERY) -> RequestPair:
    gid = global_id.encode("Chat", chat_id)
    return RequestPair(
        graphql=graphql_post(query, fixtures.token, {"id": gid}),
        baseline=HttpRequest("GET", BASELINE_PATH.format(chat_id=chat_id), bearer(fixtures.token)),
    )


async def prepare(fixtures: Fixtures) -> RequestPair:
    seeded = await seed_chats(fixtures.database_url, fixtures.user.username, 1, 1000)
    return _pair(fixtures, str(seeded.chat_ids[0]))


async def prepare_deep(fixtures: Fixtures) -> RequestPair:
    """P3: graphql = newest page of a 100 000-message chat; baseline = of a 10-message one.

    Both ask for the last 10 messages, so both answers are the same size and only
    the depth of the history differs.
    """
    deep = await seed_chats(fixtures.database_url, fixtures.user.username, 1, 100_000)
    shallow = await seed_chats(fixtures.database_url, fixtures.user.username, 1, 10, seed=8)
    query = QUERY.replace("last: 50", "last: 10")
    big = _pair(fixtures, str(deep.chat_ids[0]), query)
    small = _pair(fixtures, str(shallow.chat_ids[0]), query)
    return RequestPair(graphql=big.graphql, baseline=small.graphql)


DEEP_BENCHMARK = Benchmark(
    name="messages-deep",
    summary="P3: newest 10 of a 100 000-message chat (graphql) vs of a 10-message chat "
    "(baseline column), both through GraphQL; compare p50 latency",
    prepare=prepare_deep,
    baseline_routes=[],
    baseline_is_graphql=True,
)

BENCHMARK = Benchmark(
    name="messages",
    summary="P1: chat(id){ messages(last: 50) } over HTTP vs the same 50 rows as JSON",
    prepare=prepare,
    baseline_routes=[
        Route(BASELINE_PATH, baseline_page, methods=["GET"]),
        Route(SELECT_ONLY_PATH, select_only_page, methods=["GET"]),
    ],
    baseline_variants={"select-only": _select_only},
)
