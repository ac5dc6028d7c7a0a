"""A throwaway PostgreSQL database for one benchmark run, prepared like production.

Which server: ``DATABASE_URL``'s if set, else a local one on 127.0.0.1:5432
(user postgres, trust auth) if it answers, else a private embedded cluster in a
temp dir. The run always gets its own ``agentgql_bench_<random>`` database and
drops it WITH (FORCE) at the end, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise

from bench.benchmark import Benchmark, Fixtures, RequestPair
from db.connection import close_database, open_database, parse_database_url, tortoise_config
from db.embedded import EmbeddedCluster
from db.migrator import apply_migrations
from db.vocabulary import TokenKind
from resolvers.accounts import create_user
from resolvers.tokens import issue_token

LOCAL_URL = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password-1"


class DatabaseFailed(RuntimeError):
    """The chosen PostgreSQL server refused or could not be reached."""


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    url: str
    where: str  # for the report header: which server the numbers came from


def with_database(url: str, name: str) -> str:
    """``url`` pointed at database ``name``; credentials and query kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(**parse_database_url(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(**parse_database_url(url), timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _admin_server(stack: ExitStack, *, embedded: bool) -> tuple[str, str]:
    """An admin URL on the chosen server and a description of it."""
    configured = os.environ.get("DATABASE_URL")
    if configured and not embedded:
        parts = urlsplit(configured)
        return configured, f"DATABASE_URL server {parts.hostname or 'socket'}:{parts.port or 5432}"
    if not embedded and asyncio.run(_answers(LOCAL_URL)):
        return LOCAL_URL, "local server 127.0.0.1:5432"
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentgql-bench-pg-")))
    cluster = EmbeddedCluster(tmp)
    stack.callback(cluster.stop)
    return cluster.start(), "embedded cluster in a temp dir (Unix socket)"


@contextmanager
def bench_database(*, embedded: bool = False) -> Iterator[BenchDatabase]:
    """Create the run's database; drop it (and stop any embedded cluster) on exit."""
    with ExitStack() as stack:
        admin_url, where = _admin_server(stack, embedded=embedded)
        name = f"agentgql_bench_{secrets.token_hex(4)}"
        try:
            asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"'))
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseFailed(f"cannot create {name} on {where}: {exc}") from exc
        try:
            yield BenchDatabase(name=name, url=with_database(admin_url, name), where=where)
        finally:
            asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def prepare(url: str, benchmark: Benchmark) -> RequestPair:
    """Migrate, create the bench user and token, seed, then ANALYZE.

    ANALYZE matters: without statistics, the generic plan Postgres switches to
    for asyncpg's prepared statements can be many times slower (stack.md).
    """
    await open_database(url)
    try:
        await apply_migrations(tortoise_config(url))
        user = await create_user(BENCH_USER, BENCH_PASSWORD)
        issued = await issue_token(user, TokenKind.API, BENCH_USER, None)
        pair = await benchmark.prepare(Fixtures(user=user, token=issued.secret, database_url=url))
        await Tortoise.get_connection("default").execute_script("ANALYZE")
    finally:
        await close_database()
    return pair
