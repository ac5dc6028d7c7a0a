"""The deployment's chat settings: one object to read, one mutation to change it."""

from __future__ import annotations

from typing import cast

import strawberry

from resolvers import chat_config
from schema.info import Info


@strawberry.type(description="Deployment-wide chat settings.")
class ChatConfig:
    chat_retention_days: int = strawberry.field(
        description="Archived chats, and files no chat links, are deleted this many days "
        "after they were last touched; 0 keeps them forever."
    )


@strawberry.input(description="Only the fields given change.")
class UpdateChatConfigInput:
    chat_retention_days: int | None = strawberry.field(
        default=None, description="0 (keep forever) .. 3650."
    )


@strawberry.type
class ChatConfigQueries:
    @strawberry.field(description="The deployment's chat settings (any signed-in user).")
    async def chat_config(self, info: Info) -> ChatConfig:
        return cast(ChatConfig, await chat_config.read_chat_config(info.context))


@strawberry.type
class ChatConfigMutations:
    @strawberry.mutation(description="Change chat settings (MANAGE_DEPLOYMENT_CONFIG).")
    async def update_chat_config(self, info: Info, input: UpdateChatConfigInput) -> ChatConfig:
        changes = chat_config.ChatConfigChanges(chat_retention_days=input.chat_retention_days)
        view = await chat_config.update_chat_config(info.context, changes)
        return cast(ChatConfig, view)
