"""The deployment system prompt: built-in default plus the admin's custom text.

Composition is ``[default?, custom?]`` joined by a blank line; the default is
included unless the admin switched it off. A failure to read the setting falls
back to the default alone, so a turn never runs without one.
"""

from __future__ import annotations

import logging

from db.models import SiteConfig, UserConfig

log = logging.getLogger(__name__)

CUSTOM_KEY = "agents_chat_system_prompt"
INCLUDE_DEFAULT_KEY = "agents_chat_include_default_system_prompt"
USER_PROMPT_KEY = "chat_custom_prompt"

DEFAULT_SYSTEM_PROMPT = (
    "You are a coding agent working inside the user's workspace. Read before you "
    "change, make the smallest change that solves the problem, run the tests that "
    "cover it, and say plainly what you did and what is left."
)


def compose(custom: str | None, include_default: bool) -> str:
    pieces = [DEFAULT_SYSTEM_PROMPT] if include_default else []
    if custom and custom.strip():
        pieces.append(custom.strip())
    return "\n\n".join(pieces)


async def deployment_system_prompt() -> str:
    try:
        rows = {
            r.key: r.value
            for r in await SiteConfig.filter(key__in=[CUSTOM_KEY, INCLUDE_DEFAULT_KEY])
        }
    except Exception:
        log.warning("reading the system prompt failed; using the default", exc_info=True)
        return DEFAULT_SYSTEM_PROMPT
    custom = rows.get(CUSTOM_KEY)
    include = rows.get(INCLUDE_DEFAULT_KEY, True)
    return compose(custom if isinstance(custom, str) else None, include is not False)


async def user_instructions(user_id: object) -> str | None:
    """The user's personal instructions, wrapped as the model expects them."""
    row = await UserConfig.filter(user_id=user_id, key=USER_PROMPT_KEY).first()
    text = row.value if row is not None and isinstance(row.value, str) else None
    if not text or not text.strip():
        return None
    return f"<user-instructions>\n{text.strip()}\n</user-instructions>"
