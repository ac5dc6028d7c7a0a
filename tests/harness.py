"""Test plumbing: which Postgres to use, template databases, a GraphQL client.

Postgres: the server on 127.0.0.1:5432 when reachable (always in CI, where its
absence is a failure), else a throwaway embedded cluster. One migrated template
database per session; each test module gets ``CREATE DATABASE … TEMPLATE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from db.connection import close_database, open_database, tortoise_config
from db.costing import ModelPrices
from db.embedded import EmbeddedCluster, database_url
from db.migrator import apply_migrations
from db.model_resolution import KeySource, ResolvedModel
from db.models import User
from db.vocabulary import ProviderKind, TokenKind
from events.payloads import WorkAvailable
from events.wire import as_json
from resolvers.accounts import hash_password
from resolvers.tokens import issue_token
from schema.engine.executor import SHADOW_RUN

IN_CI = os.environ.get("CI", "").lower() == "true"
SERVER_DSN = os.environ.get("AGENTGQL_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AGENTGQL_TEST_REDIS", "redis://127.0.0.1:6379")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class PostgresServer:
    admin_dsn: str
    kind: str
    cluster: EmbeddedCluster | None = None
    created: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return database_url(self.admin_dsn, name)

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self, name: str, template: str | None = None) -> str:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await self.execute(f'CREATE DATABASE "{name}"{suffix}')
        self.created.append(name)
        return self.url(name)

    async def drop_all(self) -> None:
        for name in reversed(self.created):
            await self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def start_postgres() -> PostgresServer:
    if reachable("127.0.0.1", 5432):
        return PostgresServer(admin_dsn=SERVER_DSN, kind="server")
    if IN_CI:
        raise RuntimeError("CI=true but no PostgreSQL server on 127.0.0.1:5432")
    cluster = EmbeddedCluster(Path(tempfile.mkdtemp(prefix="agentgql-test-")))
    return PostgresServer(admin_dsn=cluster.start(), kind="embedded", cluster=cluster)


async def make_template(pg: PostgresServer) -> str:
    name = f"agentgql_tpl_{uuid.uuid4().hex[:10]}"
    url = await pg.create(name)
    await open_database(url)
    try:
        await apply_migrations(tortoise_config(url))
    finally:
        await close_database()
    return name


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class GraphQLClient:
    """Posts GraphQL over HTTP the way a browser client would."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        try:
            return await self.http.post("/graphql", json=body, headers=sent)
        finally:
            self.http.cookies.clear()  # each call is its own client: no session carry-over

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token=token, headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The ``data`` of a response that must have no errors."""
        result = await self(query, variables, **kw)
        assert "errors" not in result, result["errors"]
        return result["data"]

    async def error(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The first error of a response that must fail."""
        result = await self(query, variables, **kw)
        assert result.get("errors"), result
        return result["errors"][0]


SIGN_UP = """
mutation($u: String!, $p: String!) {
  signUp(input: {username: $u, password: $p}) { token user { id username role } }
}"""
LOGIN = """
mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token user { id username role } }
}"""
PASSWORD = "correct-horse-battery"


@contextlib.asynccontextmanager
async def graphql_ws(
    app: Any,
    path: str = "/graphql",
    *,
    headers: dict[str, str] | None = None,
    init: dict[str, Any] | None = None,
) -> AsyncIterator[AsyncWebSocketSession]:
    """An acknowledged graphql-transport-ws session against ``app`` (in-process)."""
    transport = ASGIWebSocketTransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        aconnect_ws(
            path, client, subprotocols=["graphql-transport-ws"], headers=headers or {}
        ) as ws,
    ):
        message: dict[str, Any] = {"type": "connection_init"}
        if init is not None:
            message["payload"] = init
        await ws.send_json(message)
        ack = await ws.receive_json(timeout=5)
        assert ack["type"] == "connection_ack", ack
        yield ws


@contextlib.contextmanager
def counted_queries() -> Iterator[list[str]]:
    """Every SQL statement sent through asyncpg while the block runs.

    Counting, not mocking: the statements still go to PostgreSQL.
    """
    sent: list[str] = []
    connection = asyncpg.connection.Connection
    original_execute = connection._execute
    original_plain = connection.execute

    async def execute_counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not SHADOW_RUN.get():  # --shadow-compiled's second run is not the request's
            sent.append(query)
        return await original_execute(self, query, *args, **kwargs)

    async def plain_counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args and not SHADOW_RUN.get():  # with arguments: counted in _execute
            sent.append(query)
        return await original_plain(self, query, *args, **kwargs)

    connection._execute = execute_counted
    connection.execute = plain_counted
    try:
        yield sent
    finally:
        connection._execute = original_execute
        connection.execute = original_plain


@contextlib.asynccontextmanager
async def listening(app: Any, channel: str) -> AsyncIterator[Any]:
    """A subscriber that sees only what is published from now on.

    Earlier events may still be on their way through the hub; a marker published
    after subscribing flushes them, since one channel's events arrive in order.
    """
    hub = app.state.event_hub
    async with hub.subscribe(channel) as subscriber:
        marker = WorkAvailable(uuid.uuid4())  # off its channel: every stream ignores it
        await hub.publish(channel, marker)
        while await subscriber.get(timeout=5) != marker:
            pass
        yield subscriber


async def received(subscriber: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events as they went over the wire (JSON objects)."""
    return [as_json(await subscriber.get(timeout=5)) for _ in range(count)]


async def nothing_more(subscriber: Any) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscriber.get(), 0.2)


@dataclass
class Person:
    user: User
    token: str


_password_hash: list[str] = []


async def new_person(prefix: str = "u") -> Person:
    """A fresh member with a day-long session token, made directly in the database
    (argon2 runs once per process: hashing per person would dominate the tests)."""
    if not _password_hash:
        _password_hash.append(await hash_password(PASSWORD))
    user = await User.create(
        username=f"{prefix}{uuid.uuid4().hex[:12]}", password_hash=_password_hash[0]
    )
    expires = datetime.now(UTC) + timedelta(days=1)
    issued = await issue_token(user, TokenKind.SESSION, "session", expires)
    return Person(user, issued.secret)


def redis_or_skip() -> str:
    """The shared Redis's URL; a missing Redis skips the test, and fails it in CI."""
    if reachable("127.0.0.1", 6379):
        return REDIS_URL
    if IN_CI:
        pytest.fail("CI=true but no Redis on 127.0.0.1:6379")
    pytest.skip("no Redis on 127.0.0.1:6379")


def scripted_model(**changes: Any) -> ResolvedModel:
    """A resolved scripted model priced at $1 / $2 per million tokens (no key,
    a 1 000-token context); ``changes`` replaces any field."""
    model = ResolvedModel(
        model_config_id=uuid.uuid4(),
        provider_id=uuid.uuid4(),
        provider_kind=ProviderKind.SCRIPTED,
        provider_display_name="Scripted",
        base_url=None,
        model="scripted",
        display_name="Scripted",
        context_limit=1000,
        compression_threshold=70,
        max_output_tokens=None,
        prices=ModelPrices(input_micros=1_000_000, output_micros=2_000_000),
        key_source=KeySource.NONE,
    )
    return dataclasses.replace(model, **changes)
