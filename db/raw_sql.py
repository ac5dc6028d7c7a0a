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

M = TypeVar("M", bound=Model)


async def fetch(sql: str, *args: Any) -> list[Any]:
    client: Any = Tortoise.get_connection("default")
    async with client.acquire_connection() as conn:
        return list(await conn.fetch(sql, *args))


async def fetchrow(sql: str, *args: Any) -> Any:
    client: Any = Tortoise.get_connection("default")
    async with client.acquire_connection() as conn:
        return await conn.fetchrow(sql, *args)


def model_from(model: type[M], row: Any, prefix: str = "") -> M:
    """A model instance from a record's columns (``prefix`` strips joined names)."""
    if prefix:
        values = {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}
    else:
        values = dict(row)
    return model._init_from_db(**values)
