"""Reading and changing the text every turn's prompt is built from: the
deployment system prompt (MANAGE_DEPLOYMENT_CONFIG) and each user's personal
instructions (the user themself).

Text is trimmed, then measured in UTF-8 bytes against its cap
(``db.system_prompt``); too long is BAD_USER_INPUT naming the field and the
limit, and nothing is written. Control characters never get here: the schema's
text rule refuses them in every input.
"""

from __future__ import annotations

from dataclasses import dataclass

from db import system_prompt
from db.vocabulary import Permission
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.permissions import require_permission, require_viewer


@dataclass(frozen=True)
class SystemPromptView:
    custom_prompt: str
    include_default_system_prompt: bool
    default_system_prompt: str
    effective_prompt: str


def _view(config: system_prompt.SystemPromptConfig) -> SystemPromptView:
    return SystemPromptView(
        custom_prompt=config.custom_prompt,
        include_default_system_prompt=config.include_default,
        default_system_prompt=system_prompt.DEFAULT_SYSTEM_PROMPT,
        effective_prompt=config.effective_prompt,
    )


def _checked(field: str, text: str, limit: int) -> str:
    cleaned = text.strip()
    size = system_prompt.utf8_size(cleaned)
    if size > limit:
        raise bad_input(
            field,
            f"at most {limit} bytes ({limit // 1024} KiB) of UTF-8 text; this is {size}",
            maximum=limit,
        )
    return cleaned


async def system_prompt_config(ctx: RequestContext) -> SystemPromptView:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    return _view(await system_prompt.read_config())


async def update_system_prompt_config(
    ctx: RequestContext, custom_prompt: str, include_default: bool
) -> SystemPromptView:
    """Sets both settings in one statement: chats see the old pair or the new one."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    text = _checked("customPrompt", custom_prompt, system_prompt.SYSTEM_PROMPT_MAX_BYTES)
    config = system_prompt.SystemPromptConfig(text, include_default)
    await system_prompt.write_config(config)
    return _view(config)


async def personal_instructions(ctx: RequestContext) -> str:
    viewer = require_viewer(ctx)
    return await system_prompt.personal_instructions(viewer.id)


async def update_personal_instructions(ctx: RequestContext, instructions: str) -> None:
    """Empty (or only whitespace) clears them."""
    viewer = require_viewer(ctx)
    limit = system_prompt.PERSONAL_INSTRUCTIONS_MAX_BYTES
    text = _checked("instructions", instructions, limit)
    await system_prompt.set_personal_instructions(viewer.id, text)
