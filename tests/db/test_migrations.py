"""Committed migrations build the schema, match the models, and gate startup."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

import db
from db.connection import close_database, open_database, tortoise_config
from db.migrator import apply_migrations, pending_migrations, unmigrated_model_changes
from server.database import SchemaBehind, database
from server.settings import Settings
from tests.harness import PostgresServer

MIGRATIONS = sorted(
    f"models.{path.stem}" for path in (Path(db.__file__).parent / "migrations").glob("0*.py")
)
TABLES = {
    "users",
    "groups",
    "group_members",
    "api_tokens",
    "site_configs",
    "user_configs",
    "chats",
    "chat_messages",
    "chat_queued_messages",
}


async def _empty_database(postgres: PostgresServer) -> str:
    return await postgres.create(f"agentgql_mig_{uuid.uuid4().hex[:8]}")


async def test_migrations_apply_to_an_empty_database_and_match_the_models(
    postgres: PostgresServer,
) -> None:
    url = await _empty_database(postgres)
    config = tortoise_config(url)
    await open_database(url)
    try:
        assert await pending_migrations(config) == MIGRATIONS
        assert await apply_migrations(config) == MIGRATIONS
        assert await pending_migrations(config) == []
        # makemigrations would write nothing: the committed files match the models.
        assert await unmigrated_model_changes(config) == 0
    finally:
        await close_database()
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    assert {r["tablename"] for r in rows} >= TABLES


async def test_external_database_behind_is_refused_with_a_clear_message(
    postgres: PostgresServer, tmp_path
) -> None:
    url = await _empty_database(postgres)
    settings = Settings(database_url=url, data_dir=tmp_path)
    with pytest.raises(
        SchemaBehind, match=rf"{len(MIGRATIONS)} migration\(s\) pending .*agentgql migrate"
    ):
        async with database(settings):
            pass
    async with database(settings, migrate=True) as db:
        assert db.embedded is False
    async with database(settings):  # now current: starts without --migrate
        pass
