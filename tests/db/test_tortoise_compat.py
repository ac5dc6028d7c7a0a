"""Tortoise's private surface the raw-SQL paths build on is where they expect it.

``db.tortoise_compat`` reads the Postgres client's asyncpg pool and builds
models with ``Model._init_from_db``. If an upgrade renames or reshapes either,
these fail, naming the installed version: the token check, chat lookup and
message page would otherwise break on every request, or build models that
``save`` inserts instead of updating.
"""

from __future__ import annotations

import inspect
import uuid
from importlib.metadata import version

import asyncpg
from starlette.applications import Starlette
from tortoise import Tortoise
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.models import Model

from db.models import User
from db.tortoise_compat import (
    CHECKED_AGAINST,
    INIT_FROM_DB,
    POOL,
    asyncpg_pool,
    model_from_values,
)
from db.vocabulary import UserRole
from resolvers.accounts import create_user
from tests.harness import PASSWORD

COLUMNS = (
    "id",
    "username",
    "name",
    "email",
    "password_hash",
    "role",
    "disabled",
    "spend_limit_micros",
    "granted_permissions",
    "created_at",
    "updated_at",
)


def changed(what: str) -> str:
    return (
        f"tortoise-orm {version('tortoise-orm')} changed {what} (checked against "
        f"{CHECKED_AGAINST}): revisit db/tortoise_compat.py"
    )


def test_init_from_db_is_a_classmethod_taking_columns_by_name() -> None:
    assert hasattr(Model, INIT_FROM_DB), changed(f"Model.{INIT_FROM_DB} (gone)")
    assert isinstance(inspect.getattr_static(Model, INIT_FROM_DB), classmethod), changed(
        f"Model.{INIT_FROM_DB} (no longer a classmethod)"
    )
    parameters = list(inspect.signature(getattr(Model, INIT_FROM_DB)).parameters.values())
    kinds = [p.kind for p in parameters]
    assert kinds == [inspect.Parameter.VAR_KEYWORD], changed(
        f"Model.{INIT_FROM_DB}'s signature (now {parameters})"
    )


def test_the_asyncpg_client_declares_its_pool() -> None:
    assert POOL in inspect.get_annotations(AsyncpgDBClient), changed(
        f"AsyncpgDBClient.{POOL} (no longer declared)"
    )


async def test_the_pool_is_an_open_asyncpg_pool_on_the_orms_database(app: Starlette) -> None:
    client = Tortoise.get_connection("default")
    assert hasattr(client, POOL), changed(f"{type(client).__name__}.{POOL} (gone)")
    pool = asyncpg_pool(client)
    assert isinstance(pool, asyncpg.Pool), changed(f"{POOL} (now {type(pool).__name__})")
    through_orm = await client.execute_query_dict("SELECT current_database() AS name")
    assert await pool.fetchval("SELECT current_database()") == through_orm[0]["name"]


async def test_a_model_built_from_a_row_equals_the_orms_and_saves_as_an_update(
    app: Starlette,
) -> None:
    user = await create_user(f"compat-{uuid.uuid4().hex[:8]}", PASSWORD, role=UserRole.MEMBER)
    row = await asyncpg_pool(Tortoise.get_connection("default")).fetchrow(
        "SELECT * FROM users WHERE id = $1", user.id
    )
    built = model_from_values(User, dict(row))
    stored = await User.get(id=user.id)
    assert isinstance(built, User)
    for field in COLUMNS:
        assert getattr(built, field) == getattr(stored, field), changed(f"{field} when built")
    assert built.role is UserRole.MEMBER, changed("enum conversion when built")
    assert isinstance(built.granted_permissions, list), changed("JSON conversion when built")

    built.name = "Renamed From A Row"
    await built.save(update_fields=["name"])  # a new instance would be an INSERT and fail
    assert (await User.get(id=user.id)).name == "Renamed From A Row", changed(
        "the stored mark on built models"
    )
    assert await User.filter(username=user.username).count() == 1
