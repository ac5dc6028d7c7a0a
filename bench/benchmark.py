"""What a benchmark is: the data it seeds, the two requests it times, the baseline routes.

A new benchmark is one module that builds a ``Benchmark`` plus one line in
``bench.registry``; everything else (database, servers, load, report) is shared.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    # Other baselines to time against (``--baseline NAME``): the default
    # request rewritten, e.g. to a route that skips the token and ownership checks.
    baseline_variants: Mapping[str, Callable[[HttpRequest], HttpRequest]] = field(
        default_factory=dict
    )


def pool_of(request: Request) -> Any:
    """The baseline's asyncpg pool (asyncpg ships no type information)."""
    return request.app.state.pool


def json_response(data: object) -> Response:
    """orjson-encoded, as the GraphQL view encodes its responses."""
    return Response(orjson.dumps(data), media_type="application/json")


DEFAULT_BASELINE = "default"


def run_options(
    prog: str, description: str | None, *, rounds: int, duration: float, connections: int
) -> argparse.ArgumentParser:
    """The options every benchmark run takes, with that benchmark's defaults."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help="timed rounds per side")
    parser.add_argument("--duration", type=float, default=duration, help="seconds per round")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds per round")
    parser.add_argument(
        "--connections", type=int, default=connections, help="concurrent connections"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help="which baseline to time against (messages: select-only = one SELECT, no auth)",
    )
    parser.add_argument(
        "--embedded", action="store_true", help="always use a private embedded PostgreSQL"
    )
    return parser


def checked_run_options(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.connections < 1:
        parser.error("--rounds and --connections must be ≥ 1, --duration > 0, --warmup ≥ 0")
    return args


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
