"""The one place agentgql reaches into Tortoise ORM beyond its public API.

The hot paths (token check, chat lookup, message page) skip Tortoise's query
builder: they run prepared statements on the asyncpg pool under Tortoise's
client and build models straight from the records. Tortoise has no public way
to do either:
- ``BasePostgresClient._pool`` is the asyncpg pool the client opens at startup
  (``None`` until then and after close);
- ``Model._init_from_db(**columns)`` builds an instance marked as loaded from
  the database (so ``save`` updates it), keyed by column name, exactly as
  Tortoise's own executor does for every row.

Checked against tortoise-orm 1.1.9 (the pin in ``pyproject.toml``).
``tests/db/test_tortoise_compat.py`` fails if an upgrade renames or reshapes
either, and ``tests/test_private_apis.py`` fails if any other module uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

CHECKED_AGAINST = "1.1.9"
"""The tortoise-orm version this surface was last checked against."""

POOL = "_pool"
"""The Postgres client's attribute holding its asyncpg pool."""

INIT_FROM_DB = "_init_from_db"
"""The model classmethod building an instance from a database row."""

PRIVATE_NAMES = frozenset({POOL, INIT_FROM_DB})
"""Every private Tortoise name agentgql uses, all of them here."""

M = TypeVar("M", bound=Model)


def asyncpg_pool(client: BaseDBAsyncClient) -> Any:
    """The asyncpg pool under a Postgres ``client`` (None while it is not open)."""
    return getattr(client, POOL)


def model_from_values(model: type[M], values: Mapping[str, Any]) -> M:
    """An instance of ``model`` as Tortoise builds one from a row: ``values`` by
    column name, the instance marked as stored (``save`` updates it)."""
    return model._init_from_db(**values)
