"""What a benchmark is: the data it seeds, the two requests it times, the baseline routes.

A new benchmark is one module that builds a ``Benchmark`` plus one line in
``bench.registry``; everything else (database, servers, load, report) is shared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from db.models import User

GRAPHQL_PATH = "/graphql"


@dataclass(frozen=True)
class Fixtures:
    """What every benchmark starts from: one user, a bearer token of theirs, and the
    database (for bulk seeding with COPY)."""

    user: User
    token: str
    database_url: str


@dataclass(frozen=True)
class HttpRequest:
    """One request, encoded once into bytes and replayed on keep-alive connections."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self, host: str, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def graphql_post(query: str, token: str, variables: dict[str, Any] | None = None) -> HttpRequest:
    """A JSON POST to /graphql, the way clients send queries."""
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    headers = {"Content-Type": "application/json", **bearer(token)}
    return HttpRequest("POST", GRAPHQL_PATH, headers, orjson.dumps(payload))


@dataclass(frozen=True)
class RequestPair:
    """The GraphQL request and the baseline request that must answer the same data."""

    graphql: HttpRequest
    baseline: HttpRequest


@dataclass(frozen=True)
class Benchmark:
    """``prepare`` seeds data (Tortoise is open) and returns the requests to time;
    ``baseline_routes`` are mounted in ``bench.baseline`` next to every other one."""

    name: str
    summary: str
    prepare: Callable[[Fixtures], Awaitable[RequestPair]]
    baseline_routes: Sequence[BaseRoute]
    # True: the "baseline" request also goes to agentgql (a GraphQL-vs-GraphQL
    # comparison, e.g. a huge chat against a small one); answers need not match.
    baseline_is_graphql: bool = False


def pool_of(request: Request) -> Any:
    """The baseline's asyncpg pool (asyncpg ships no type information)."""
    return request.app.state.pool


def json_response(data: object) -> Response:
    """orjson-encoded, as the GraphQL view encodes its responses."""
    return Response(orjson.dumps(data), media_type="application/json")
