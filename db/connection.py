"""Tortoise configuration and the process-wide connection pool.

Tortoise 1.x keeps its state in a ContextVar; request tasks only see it through
the global fallback, so the server opens the database with it enabled (one per
process) and closes it on shutdown.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tortoise import Tortoise

# Plan every statement with its actual parameters. asyncpg prepares statements,
# and Postgres's generic plan for the message page scanned the primary key
# backwards filtering chat_id: 0.1 ms for a long chat, 20 ms for a short one.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan", "application_name": "agentgql"}
MODELS_MODULE = "db.models"


async def keep_session(connection: Any) -> None:
    """asyncpg's pool runs a reset script (RESET ALL, UNLISTEN *, CLOSE ALL,
    unlock advisory locks) on every release: a second round trip per query.
    We keep no session state (locks are transaction-scoped, no LISTEN, no SET),
    and asyncpg still rolls back an unfinished transaction before calling this."""
    return None


MIGRATIONS_MODULE = "db.migrations"


def parse_database_url(url: str) -> dict[str, Any]:
    """asyncpg credentials from a ``postgres://`` URL, Unix sockets included.

    Tortoise's own URL parser does not accept an empty host with ``?host=/dir``,
    which is what an embedded cluster (and libpq) use for sockets.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "asyncpg"}:
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, not {parts.scheme!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.pop("host", None) or parts.hostname or "127.0.0.1"
    return {
        "host": unquote(host),
        "port": parts.port or int(query.pop("port", "5432")),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/") or "postgres"),
        **query,
    }


def tortoise_config(url: str, *, min_size: int = 1, max_size: int = 10) -> dict[str, Any]:
    credentials = parse_database_url(url)
    credentials.update(
        minsize=min_size, maxsize=max_size, server_settings=SERVER_SETTINGS, reset=keep_session
    )
    return {
        "connections": {
            "default": {"engine": "tortoise.backends.asyncpg", "credentials": credentials}
        },
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Read by the ``tortoise`` CLI (pyproject ``[tool.tortoise]``) for makemigrations.
MIGRATIONS_CONFIG = tortoise_config(
    os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
)


async def open_database(url: str, *, min_size: int = 1, max_size: int = 10) -> None:
    await Tortoise.init(
        config=tortoise_config(url, min_size=min_size, max_size=max_size),
        _enable_global_fallback=True,
    )


async def close_database() -> None:
    await Tortoise.close_connections()
