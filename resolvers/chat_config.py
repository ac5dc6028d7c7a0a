"""Reading and changing the deployment's chat settings.

Any signed-in user reads them (clients show the retention period); only
holders of MANAGE_DEPLOYMENT_CONFIG change them. Each field of an update is
validated before any is written, so a bad value changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from db import chat_config
from db.vocabulary import CHAT_RETENTION_DAYS_MAX, Permission
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.permissions import require_permission, require_viewer


@dataclass
class ChatConfigView:
    chat_retention_days: int


@dataclass
class ChatConfigChanges:
    chat_retention_days: int | None = None


async def read_chat_config(ctx: RequestContext) -> ChatConfigView:
    require_viewer(ctx)
    return ChatConfigView(chat_retention_days=await chat_config.chat_retention_days())


async def update_chat_config(ctx: RequestContext, changes: ChatConfigChanges) -> ChatConfigView:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    days = changes.chat_retention_days
    if days is not None and not 0 <= days <= CHAT_RETENTION_DAYS_MAX:
        raise bad_input(
            "chatRetentionDays", f"between 0 (keep forever) and {CHAT_RETENTION_DAYS_MAX}"
        )
    async with in_transaction() as conn:
        if days is not None:
            await chat_config.write_raw(chat_config.RETENTION_DAYS_KEY, days, conn)
    return await read_chat_config(ctx)
