"""Committed migrations build the schema, match the models, and gate startup."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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


async def test_the_money_migration_backfills_rollups_and_counters_from_messages(
    postgres: PostgresServer,
) -> None:
    """Messages recorded before 0008 land in the day rollups and period counters;
    a model whose prices were all zero (the old default) becomes unpriced."""
    from tortoise.connection import get_connection
    from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

    url = await _empty_database(postgres)
    config = tortoise_config(url)
    await open_database(url)
    try:
        executor = MigrationExecutor(get_connection("default"), dict(config["apps"]))
        await executor.migrate([MigrationTarget("models", "0007_login_throttles")])
    finally:
        await close_database()
    owner, root, child = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    priced, zero = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at,"
            " updated_at) VALUES ($1, 'old', 'x', 'member', false, now(), now())",
            owner,
        )
        await conn.execute(  # an existing token: later migrations add columns to it
            "INSERT INTO api_tokens (id, user_id, kind, name, token_hash, prefix, created_at)"
            " VALUES ($1, $2, 'session', 'login', $3, 'agq_x', now())",
            uuid.uuid4(),
            owner,
            "0" * 64,
        )
        await conn.execute(
            "INSERT INTO groups (id, name, created_at) VALUES ($1, 'old group', now())",
            uuid.uuid4(),
        )
        provider = uuid.uuid4()
        await conn.execute(
            "INSERT INTO providers (id, kind, display_name, enabled, central_key_enabled,"
            " user_keys_allowed, central_key_fallback, created_at, updated_at)"
            " VALUES ($1, 'openai', 'OpenAI', true, true, false, false, now(), now())",
            provider,
        )
        for config_id, name, price in ((priced, "p", 1_000_000), (zero, "z", 0)):
            await conn.execute(
                "INSERT INTO model_configs (id, provider_id, model, display_name, enabled,"
                " is_default, deleted, context_limit, compression_threshold,"
                " input_price_micros, output_price_micros, cache_read_price_micros,"
                " cache_write_price_micros, created_at, updated_at)"
                " VALUES ($1, $2, $3, $3, true, false, false, 1000, 70, $4, $4, 0, 0,"
                " now(), now())",
                config_id,
                provider,
                name,
                price,
            )
        for chat_id, parent in ((root, None), (child, root)):
            await conn.execute(
                "INSERT INTO chats (id, owner_id, parent_id, root_id, title, status,"
                " plan_mode, archived, pin_order, list_rank, labels, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, 't', 'waiting', false, false, 0, 2147483647,"
                " '{}', now(), now())",
                chat_id,
                owner,
                parent,
                root,
            )
        rows = [  # chat, config, at, input, output, cost
            (root, priced, datetime(2026, 2, 28, 23, 59, tzinfo=UTC), 100, 10, 120),
            (child, priced, datetime(2026, 3, 1, 0, 1, tzinfo=UTC), 200, 20, 240),
            (root, zero, datetime(2026, 3, 1, 12, tzinfo=UTC), 50, 5, 0),
        ]
        for chat_id, config_id, at, inp, out, cost in rows:
            await conn.execute(
                "INSERT INTO chat_messages (role, parts, visibility, compressed, deleted,"
                " input_tokens, output_tokens, total_cost_micros, model_config_id, created_at,"
                " chat_id) VALUES ('assistant', '[]', 'both', false, false, $1, $2, $3, $4,"
                " $5, $6)",
                inp,
                out,
                cost,
                config_id,
                at,
                chat_id,
            )
    finally:
        await conn.close()
    await open_database(url)
    try:
        await apply_migrations(config)
    finally:
        await close_database()
    conn = await asyncpg.connect(url)
    try:
        days = await conn.fetch(
            "SELECT day::text, cost_micros, priced_count, unpriced_count, input_tokens"
            " FROM cost_user_days WHERE user_id = $1 ORDER BY day",
            owner,
        )
        chats = await conn.fetch(
            "SELECT root_chat_id, sum(cost_micros) AS cost FROM cost_chat_days"
            " WHERE user_id = $1 GROUP BY root_chat_id",
            owner,
        )
        months = await conn.fetch(
            "SELECT period_start::date::text AS start, spent_micros FROM spend_counters"
            " WHERE user_id = $1 AND period = 'month' ORDER BY period_start",
            owner,
        )
        unpriced = await conn.fetchval(
            "SELECT input_price_micros FROM model_configs WHERE id = $1", zero
        )
        grants = await conn.fetchval("SELECT granted_permissions FROM users WHERE id = $1", owner)
        scope = await conn.fetchval("SELECT scope FROM api_tokens WHERE user_id = $1", owner)
    finally:
        await conn.close()
    assert [tuple(r) for r in days] == [
        ("2026-02-28", 120, 1, 0, 100),
        ("2026-03-01", 240, 1, 1, 250),  # the zero-priced message is unpriced now
    ]
    assert [(r["root_chat_id"], r["cost"]) for r in chats] == [(root, 360)]  # sub-agent rolled up
    assert [tuple(r) for r in months] == [("2026-02-01", 120), ("2026-03-01", 240)]
    assert unpriced is None
    assert (grants, scope) == ("[]", "all")  # existing rows got their new columns' values
