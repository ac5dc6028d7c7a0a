"""The deployment's chat settings: one object to read, one mutation to change it."""

from __future__ import annotations

from typing import cast

import strawberry

from resolvers import chat_config, usage_limits
from resolvers.prompt_config import system_prompt_config
from schema.debug_settings import DebugLoggingConfig, debug_logging_config_field
from schema.info import Info
from schema.prompt_config import SystemPromptConfig
from schema.provider import ModelConfig
from schema.usage_limit import UsageLimitConfig


@strawberry.type(description="The model explore sub-agents run on.")
class ExploreModelOverride:
    model_config: ModelConfig | None = strawberry.field(
        description="The override; null when none is set or the stored value is unusable. "
        "A disabled config is shown (explore agents then use the turn's model)."
    )
    has_malformed_override: bool = strawberry.field(
        description="The stored value is not the id of an existing model config: it is "
        "treated as unset; clear it or set a valid one."
    )


@strawberry.type(description="Deployment-wide chat settings.")
class ChatConfig:
    chat_retention_days: int = strawberry.field(
        description="Archived chats, and files no chat links, are deleted this many days "
        "after they were last touched; 0 keeps them forever."
    )
    workspace_ttl_seconds: int = strawberry.field(
        description="New workspaces stop after this many seconds without activity; 0 uses "
        "each template's defaultTtlSeconds."
    )
    template_allowlist: list[strawberry.ID] = strawberry.field(
        description="The workspace templates members may use; empty allows every template."
    )
    debug_logging: DebugLoggingConfig = debug_logging_config_field()

    @strawberry.field(
        description="Needs MANAGE_DEPLOYMENT_CONFIG (null with a FORBIDDEN error otherwise)."
    )
    async def explore_model_override(self, info: Info) -> ExploreModelOverride | None:
        view = await chat_config.explore_model_override(info.context)
        return cast(ExploreModelOverride, view)

    @strawberry.field(
        description="Added to the system prompt while a chat is in plan mode; empty when "
        "unset. Needs MANAGE_DEPLOYMENT_CONFIG (null with a FORBIDDEN error otherwise)."
    )
    async def plan_mode_instructions(self, info: Info) -> str | None:
        return await chat_config.plan_mode_instructions(info.context)

    @strawberry.field(
        description="The system prompt every chat starts with. Needs MANAGE_DEPLOYMENT_CONFIG "
        "(null with a FORBIDDEN error otherwise)."
    )
    async def system_prompt(self, info: Info) -> SystemPromptConfig | None:
        return cast(SystemPromptConfig, await system_prompt_config(info.context))

    @strawberry.field(
        description="Spend limits and their overrides. Needs MANAGE_DEPLOYMENT_CONFIG (null "
        "with a FORBIDDEN error otherwise)."
    )
    async def usage_limits(self, info: Info) -> UsageLimitConfig | None:
        return cast(UsageLimitConfig, await usage_limits.usage_limit_config(info.context))


@strawberry.input(description="Only the fields given (and not null) change.")
class UpdateChatConfigInput:
    chat_retention_days: int | None = strawberry.field(
        default=None, description="0 (keep forever) .. 3650."
    )
    workspace_ttl_seconds: int | None = strawberry.field(
        default=None,
        description="0 (each template's default), or 60 (1 minute) .. 2592000 (30 days).",
    )
    template_allowlist: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Replaces the allowlist: ids of existing, non-deprecated templates "
        "(duplicates dropped); [] allows every template.",
    )
    explore_model_override_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="An enabled model config for explore sub-agents; null clears the "
        "override, omitted leaves it.",
    )
    plan_mode_instructions: str | None = strawberry.field(
        default=None, description="At most 10000 characters (trimmed); empty clears them."
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
        override = input.explore_model_override_id
        changes = chat_config.ChatConfigChanges(
            chat_retention_days=input.chat_retention_days,
            workspace_ttl_seconds=input.workspace_ttl_seconds,
            template_allowlist=(
                None if input.template_allowlist is None else list(input.template_allowlist)
            ),
            explore_model_override_id=(
                chat_config.KEEP if override is strawberry.UNSET else override
            ),
            plan_mode_instructions=input.plan_mode_instructions,
        )
        view = await chat_config.update_chat_config(info.context, changes)
        return cast(ChatConfig, view)
