"""The deployment system prompt and each user's personal instructions: stored
text, its caps, and what a turn reads.

Deployment prompt (``site_configs``): ``agents_chat_system_prompt`` holds the
admin's custom text (a JSON string, stored trimmed) and
``agents_chat_include_default_system_prompt`` a JSON boolean (absent = true).
Both are written in one statement and read in one query, so a reader never sees
one half of an update. Composition is ``[default?, custom?]`` joined by a blank
line. A turn that cannot read the setting falls back to the default alone and
logs a warning, so a turn never runs without a prompt.

Personal instructions (``user_configs``, key ``chat_custom_prompt``): one JSON
string per user, stored trimmed; an empty text deletes the row. A turn gets them
wrapped as ``<user-instructions>``.

Caps are UTF-8 bytes of the stored (trimmed) text: 32 KiB for the deployment
prompt, 16 KiB for personal instructions.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from tortoise import Tortoise

from db.models import SiteConfig, UserConfig

log = logging.getLogger(__name__)

CUSTOM_KEY = "agents_chat_system_prompt"
INCLUDE_DEFAULT_KEY = "agents_chat_include_default_system_prompt"
USER_PROMPT_KEY = "chat_custom_prompt"

SYSTEM_PROMPT_MAX_BYTES = 32 * 1024
PERSONAL_INSTRUCTIONS_MAX_BYTES = 16 * 1024

DEFAULT_SYSTEM_PROMPT = (
    "You are a coding agent working inside the user's workspace. Read before you "
    "change, make the smallest change that solves the problem, run the tests that "
    "cover it, and say plainly what you did and what is left."
)

# Both keys in one statement: either both change or neither does.
_UPSERT_PAIR = """
INSERT INTO site_configs (key, value, updated_at)
VALUES ($1, $2::jsonb, now()), ($3, $4::jsonb, now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""
_UPSERT_USER = """
INSERT INTO user_configs (user_id, key, value, updated_at) VALUES ($1, $2, $3::jsonb, now())
ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def compose(custom: str | None, include_default: bool) -> str:
    pieces = [DEFAULT_SYSTEM_PROMPT] if include_default else []
    if custom and custom.strip():
        pieces.append(custom.strip())
    return "\n\n".join(pieces)


@dataclass(frozen=True)
class SystemPromptConfig:
    custom_prompt: str = ""
    include_default: bool = True

    @property
    def effective_prompt(self) -> str:
        """What every chat's system text starts with (may be empty)."""
        return compose(self.custom_prompt, self.include_default)


def parse_config(rows: dict[str, Any]) -> SystemPromptConfig:
    """Stored values as a config; a malformed value reads as its default (logged)."""
    custom = rows.get(CUSTOM_KEY)
    include = rows.get(INCLUDE_DEFAULT_KEY)
    if custom is not None and not isinstance(custom, str):
        log.warning("site config %s holds %r; treated as empty", CUSTOM_KEY, custom)
        custom = None
    if include is not None and not isinstance(include, bool):
        log.warning("site config %s holds %r; treated as true", INCLUDE_DEFAULT_KEY, include)
        include = None
    return SystemPromptConfig(custom or "", True if include is None else include)


async def read_config() -> SystemPromptConfig:
    """Both settings in one query."""
    rows = await SiteConfig.filter(key__in=[CUSTOM_KEY, INCLUDE_DEFAULT_KEY])
    return parse_config({row.key: row.value for row in rows})


async def write_config(config: SystemPromptConfig, conn: Any = None) -> None:
    """Sets both settings at once; the caller has checked the text (trimmed, capped)."""
    client = conn if conn is not None else Tortoise.get_connection("default")
    await client.execute_query(
        _UPSERT_PAIR,
        [
            CUSTOM_KEY,
            orjson.dumps(config.custom_prompt).decode(),
            INCLUDE_DEFAULT_KEY,
            orjson.dumps(config.include_default).decode(),
        ],
    )


async def deployment_system_prompt() -> str:
    """The composed deployment prompt for a turn; the default alone when the
    setting cannot be read."""
    try:
        config = await read_config()
    except Exception:
        log.warning("reading the system prompt failed; using the default", exc_info=True)
        return DEFAULT_SYSTEM_PROMPT
    return config.effective_prompt


# ---------------------------------------------------------------- personal instructions


async def personal_instructions(user_id: uuid.UUID) -> str:
    """The user's stored text; empty when none (or when the row is malformed)."""
    row = await UserConfig.filter(user_id=user_id, key=USER_PROMPT_KEY).first()
    if row is None:
        return ""
    if not isinstance(row.value, str):
        log.warning(
            "user config %s of %s holds %r; treated as empty", USER_PROMPT_KEY, user_id, row.value
        )
        return ""
    return row.value


async def set_personal_instructions(user_id: uuid.UUID, text: str) -> None:
    """Stores ``text`` (checked and trimmed by the caller); empty deletes it."""
    if not text:
        await UserConfig.filter(user_id=user_id, key=USER_PROMPT_KEY).delete()
        return
    client = Tortoise.get_connection("default")
    await client.execute_query(
        _UPSERT_USER, [user_id, USER_PROMPT_KEY, orjson.dumps(text).decode()]
    )


async def user_instructions(user_id: uuid.UUID) -> str | None:
    """The user's personal instructions, wrapped as the model expects them."""
    text = (await personal_instructions(user_id)).strip()
    if not text:
        return None
    return f"<user-instructions>\n{text}\n</user-instructions>"
