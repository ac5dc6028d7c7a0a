"""Hand-written SQL on the ORM's own pool, for the few queries on every hot path.

Tortoise builds each query through pypika and each row into a model; for the
token check, the chat lookup and the message page that was most of a request's
CPU. These run prepared statements directly on an asyncpg connection from the
same pool, and build models only where a model is what callers need.
"""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise import Tortoise
from tortoise.models import Model

from db.tortoise_compat import asyncpg_pool, model_from_values

M = TypeVar("M", bound=Model)


def pool() -> Any:
    """The asyncpg pool under Tortoise's default client (opened at startup)."""
    pool = asyncpg_pool(Tortoise.get_connection("default"))
    if pool is None:
        raise RuntimeError("the database pool is not open")
    return pool


async def fetch(sql: str, *args: Any) -> list[Any]:
    return list(await pool().fetch(sql, *args))


async def fetchrow(sql: str, *args: Any) -> Any:
    return await pool().fetchrow(sql, *args)


def model_from(model: type[M], row: Any, prefix: str = "") -> M:
    """A model instance from a record's columns (``prefix`` strips joined names)."""
    if prefix:
        values = {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}
    else:
        values = dict(row)
    return model_from_values(model, values)
