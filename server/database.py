"""Bringing the database up for the server and the CLI alike.

With no ``DATABASE_URL`` the embedded cluster under the data dir is started (or
joined) and always migrated; an external database is migrated only when asked,
and otherwise refused while it is behind the code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from db.connection import close_database, open_database, tortoise_config
from db.embedded import EmbeddedCluster, ensure_database
from db.migrator import apply_migrations, pending_migrations
from server.settings import Settings

log = logging.getLogger(__name__)


class SchemaBehind(RuntimeError):
    """The external database lacks migrations this code needs."""


@dataclass
class Database:
    url: str
    config: dict[str, Any]
    embedded: bool


@asynccontextmanager
async def database(settings: Settings, *, migrate: bool = False) -> AsyncIterator[Database]:
    cluster: EmbeddedCluster | None = None
    url = settings.database_url
    if url is None:
        cluster = EmbeddedCluster(settings.data_dir)
        admin_uri = await asyncio.to_thread(cluster.start)
        url = await ensure_database(admin_uri)
    config = tortoise_config(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    try:
        await open_database(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        try:
            if cluster is not None or migrate:
                applied = await apply_migrations(config)
                if applied:
                    log.info("applied migrations", extra={"migrations": applied})
            else:
                pending = await pending_migrations(config)
                if pending:
                    raise SchemaBehind(
                        f"the database is behind this version of agentgql: "
                        f"{len(pending)} migration(s) pending ({', '.join(pending)}). "
                        "Run `agentgql migrate` or start with `--migrate`."
                    )
            yield Database(url=url, config=config, embedded=cluster is not None)
        finally:
            await close_database()
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
