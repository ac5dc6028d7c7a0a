"""Deployment-wide chat settings stored in ``site_configs``, typed.

Each setting is one key (named as in the reference system) holding a JSON
value; readers get the default when the key is absent or holds something
malformed, so a bad row can never stop chats from running.
"""

from __future__ import annotations

import logging
from typing import Any

from db.models import SiteConfig
from db.vocabulary import CHAT_RETENTION_DAYS_DEFAULT, CHAT_RETENTION_DAYS_MAX

log = logging.getLogger(__name__)

RETENTION_DAYS_KEY = "agents_chat_retention_days"


async def read_raw(key: str) -> Any:
    row = await SiteConfig.filter(key=key).first()
    return None if row is None else row.value


async def write_raw(key: str, value: Any, conn: Any = None) -> None:
    await SiteConfig.update_or_create(defaults={"value": value}, key=key, using_db=conn)


async def chat_retention_days() -> int:
    """Days an archived chat (and an unlinked file) is kept; 0 keeps them forever."""
    value = await read_raw(RETENTION_DAYS_KEY)
    valid = isinstance(value, int) and not isinstance(value, bool)
    if valid and 0 <= value <= CHAT_RETENTION_DAYS_MAX:
        return int(value)
    if value is not None:
        log.warning("site config %s holds %r; using the default", RETENTION_DAYS_KEY, value)
    return CHAT_RETENTION_DAYS_DEFAULT


async def set_chat_retention_days(days: int) -> None:
    await write_raw(RETENTION_DAYS_KEY, days)
