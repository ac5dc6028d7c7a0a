"""Applying and inspecting Tortoise's built-in migrations (``db/migrations``)."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor


def _apps(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(config["apps"])


async def pending_migrations(config: dict[str, Any]) -> list[str]:
    """Names of migrations not yet applied; needs an initialised Tortoise."""
    executor = MigrationExecutor(get_connection("default"), _apps(config))
    steps = await executor.plan(None)
    return [f"{s.migration.app_label}.{s.migration.name}" for s in steps if not s.backward]


async def apply_migrations(config: dict[str, Any]) -> list[str]:
    """Apply every pending migration; returns what was applied."""
    pending = await pending_migrations(config)
    if pending:
        executor = MigrationExecutor(get_connection("default"), _apps(config))
        await executor.migrate(None)
    return pending


async def unmigrated_model_changes(config: dict[str, Any]) -> int:
    """How many migration files ``makemigrations`` would write now (0 = in sync)."""
    from tortoise.migrations.autodetector import MigrationAutodetector

    apps = Tortoise.apps
    assert apps is not None
    writers = await MigrationAutodetector(apps, _apps(config)).changes()
    return len(writers)
