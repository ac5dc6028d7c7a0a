"""Deployment-wide chat settings stored in ``site_configs``, typed.

Each setting is one key (named as in the reference system) holding a JSON
value; readers get the default when the key is absent or holds something
malformed, so a bad row can never stop chats from running.

Values:
- ``agents_chat_retention_days``: int days, 0 keeps forever (default 30).
- ``agents_template_allowlist``: array of lower-case template UUID strings;
  empty (or absent) allows every template.
- ``agents_workspace_ttl``: int **milliseconds** (the reference stores a duration
  string); 0 = each template's default, else 1 minute .. 30 days in whole seconds.
- ``agents_chat_explore_model_override``: the model config UUID as a string;
  absent = no override.
- ``agents_chat_plan_mode_instructions``: text appended to the prompt in plan mode.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from tortoise import Tortoise

from db.models import SiteConfig
from db.vocabulary import CHAT_RETENTION_DAYS_DEFAULT, CHAT_RETENTION_DAYS_MAX
from db.workspace_ttl import ttl_in_bounds

log = logging.getLogger(__name__)

RETENTION_DAYS_KEY = "agents_chat_retention_days"
TEMPLATE_ALLOWLIST_KEY = "agents_template_allowlist"
WORKSPACE_TTL_KEY = "agents_workspace_ttl"
EXPLORE_MODEL_OVERRIDE_KEY = "agents_chat_explore_model_override"
PLAN_MODE_INSTRUCTIONS_KEY = "agents_chat_plan_mode_instructions"

PLAN_MODE_INSTRUCTIONS_MAX = 10_000

_UPSERT = """
INSERT INTO site_configs (key, value, updated_at) VALUES ($1, $2::jsonb, now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""


async def read_raw(key: str) -> Any:
    row = await SiteConfig.filter(key=key).first()
    return None if row is None else row.value


async def read_many(keys: Iterable[str]) -> dict[str, Any]:
    """Several settings in one query; absent keys are missing from the result."""
    return {row.key: row.value for row in await SiteConfig.filter(key__in=list(keys))}


async def write_raw(key: str, value: Any, conn: Any = None) -> None:
    """Upserts one setting (concurrent writers of a new key cannot collide)."""
    client = conn if conn is not None else Tortoise.get_connection("default")
    await client.execute_query(_UPSERT, [key, orjson.dumps(value).decode()])


async def delete_raw(key: str, conn: Any = None) -> None:
    await SiteConfig.filter(key=key).using_db(conn).delete()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _malformed(key: str, value: Any) -> None:
    log.warning("site config %s holds %r; using the default", key, value)


def parse_retention_days(value: Any) -> int:
    if _is_int(value) and 0 <= value <= CHAT_RETENTION_DAYS_MAX:
        return int(value)
    if value is not None:
        _malformed(RETENTION_DAYS_KEY, value)
    return CHAT_RETENTION_DAYS_DEFAULT


async def chat_retention_days() -> int:
    """Days an archived chat (and an unlinked file) is kept; 0 keeps them forever."""
    return parse_retention_days(await read_raw(RETENTION_DAYS_KEY))


async def set_chat_retention_days(days: int) -> None:
    await write_raw(RETENTION_DAYS_KEY, days)


# ---------------------------------------------------------------- templates and workspaces


def parse_template_allowlist(value: Any) -> list[uuid.UUID]:
    """The stored ids in order; entries that are not UUIDs are skipped (logged)."""
    if value is None:
        return []
    if not isinstance(value, list):
        _malformed(TEMPLATE_ALLOWLIST_KEY, value)
        return []
    ids: list[uuid.UUID] = []
    for entry in value:
        try:
            key = uuid.UUID(entry) if isinstance(entry, str) else None
        except ValueError:
            key = None
        if key is None:
            _malformed(TEMPLATE_ALLOWLIST_KEY, entry)
        elif key not in ids:
            ids.append(key)
    return ids


async def template_allowlist() -> list[uuid.UUID]:
    """Templates chats may use; empty means every template."""
    return parse_template_allowlist(await read_raw(TEMPLATE_ALLOWLIST_KEY))


def template_allowed(template_id: uuid.UUID, allowlist: list[uuid.UUID]) -> bool:
    return not allowlist or template_id in allowlist


def allowlist_value(ids: Iterable[uuid.UUID]) -> list[str]:
    """The stored form: lower-case UUID strings."""
    return [str(key) for key in ids]


def parse_workspace_ttl_ms(value: Any) -> int:
    if _is_int(value) and (value == 0 or (value % 1000 == 0 and ttl_in_bounds(value // 1000))):
        return int(value)
    if value is not None:
        _malformed(WORKSPACE_TTL_KEY, value)
    return 0


async def workspace_ttl_s() -> int:
    """The TTL (seconds) for new workspaces; 0 means each template's default."""
    return parse_workspace_ttl_ms(await read_raw(WORKSPACE_TTL_KEY)) // 1000


# ---------------------------------------------------------------- agent runtime


def parse_explore_model_override(value: Any) -> tuple[uuid.UUID | None, bool]:
    """``(model config id, malformed)``: ``(None, False)`` when unset; a value that is
    not a UUID string is ``(None, True)``."""
    if value is None:
        return None, False
    try:
        return (uuid.UUID(value) if isinstance(value, str) else None), not isinstance(value, str)
    except ValueError:
        return None, True


async def explore_model_override() -> tuple[uuid.UUID | None, bool]:
    """The model explore sub-agents use, and whether the stored value is malformed.

    Only parsed here: whether the config still exists and is enabled is decided
    where it is used (an unusable override falls back to the turn's model)."""
    key, malformed = parse_explore_model_override(await read_raw(EXPLORE_MODEL_OVERRIDE_KEY))
    if malformed:
        log.warning("site config %s is malformed; treated as unset", EXPLORE_MODEL_OVERRIDE_KEY)
    return key, malformed


def parse_plan_mode_instructions(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is not None:
        _malformed(PLAN_MODE_INSTRUCTIONS_KEY, value)
    return ""


async def plan_mode_instructions() -> str:
    """The admin's extra plan-mode instructions; empty when none are set."""
    return parse_plan_mode_instructions(await read_raw(PLAN_MODE_INSTRUCTIONS_KEY))
