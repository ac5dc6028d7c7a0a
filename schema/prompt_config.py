"""The text prompts are built from: the deployment system prompt (read as
``chatConfig.systemPrompt``) and the viewer's personal instructions (read as
``viewer.personalInstructions``), each with one mutation to change it."""

from __future__ import annotations

from typing import cast

import strawberry

from resolvers import prompt_config
from schema.info import Info
from schema.user import Viewer


@strawberry.type(description="The deployment's system prompt, which starts every chat's prompt.")
class SystemPromptConfig:
    custom_prompt: str = strawberry.field(
        description="The administrator's text, added after the built-in prompt; empty when unset."
    )
    include_default_system_prompt: bool = strawberry.field(
        description="Whether the built-in prompt is included (true unless switched off)."
    )
    default_system_prompt: str = strawberry.field(
        description="The built-in prompt, read-only: a preview of what the toggle includes."
    )
    effective_prompt: str = strawberry.field(
        description="What chats get: [built-in?, custom?] joined by a blank line."
    )


@strawberry.input(description="Both settings, set together.")
class UpdateSystemPromptConfigInput:
    custom_prompt: str = strawberry.field(
        description="Trimmed; at most 32768 bytes (32 KiB) of UTF-8. Empty clears it."
    )
    include_default_system_prompt: bool


@strawberry.type
class UpdateSystemPromptConfigPayload:
    system_prompt_config: SystemPromptConfig
    warnings: list[str]


@strawberry.input
class UpdatePersonalInstructionsInput:
    instructions: str = strawberry.field(
        description="Trimmed; at most 16384 bytes (16 KiB) of UTF-8. Empty clears them."
    )


@strawberry.type
class UpdatePersonalInstructionsPayload:
    viewer: Viewer
    warnings: list[str]


@strawberry.type
class PromptConfigMutations:
    @strawberry.mutation(
        description="Set the deployment's system prompt and whether the built-in one is "
        "included, at once. Needs MANAGE_DEPLOYMENT_CONFIG."
    )
    async def update_system_prompt_config(
        self, info: Info, input: UpdateSystemPromptConfigInput
    ) -> UpdateSystemPromptConfigPayload:
        view = await prompt_config.update_system_prompt_config(
            info.context, input.custom_prompt, input.include_default_system_prompt
        )
        return UpdateSystemPromptConfigPayload(
            system_prompt_config=cast(SystemPromptConfig, view), warnings=[]
        )

    @strawberry.mutation(
        description="Set (or, with an empty text, clear) the viewer's personal instructions, "
        "which every turn of their chats includes."
    )
    async def update_personal_instructions(
        self, info: Info, input: UpdatePersonalInstructionsInput
    ) -> UpdatePersonalInstructionsPayload:
        await prompt_config.update_personal_instructions(info.context, input.instructions)
        return UpdatePersonalInstructionsPayload(viewer=Viewer(), warnings=[])
