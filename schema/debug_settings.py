"""Debug-logging settings: the deployment's, the viewer's opt-in, and their mutations.

The fields other types carry (``ChatConfig.debugLogging``,
``Viewer.debugLoggingOptIn``) are made here and placed there, so those modules
need one line each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from db.debug_runs import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from resolvers import debug_settings
from schema.info import Info

if TYPE_CHECKING:
    from schema.user import Viewer

PRECEDENCE = (
    "Whether a chat is logged: its debugLoggingOverride when set (a sub-agent without "
    "one follows its root chat), else its owner's debugLoggingOptIn while allowUsers, "
    "else enabled."
)


@strawberry.type(description="Debug logging of model calls, deployment-wide. " + PRECEDENCE)
class DebugLoggingConfig:
    enabled: bool = strawberry.field(description="Chats are logged unless a choice says no.")
    allow_users: bool = strawberry.field(
        description="Users may opt in or out themselves and override their own chats."
    )
    retention_days: int = strawberry.field(
        description=f"Runs are deleted this many days after they started "
        f"({RETENTION_DAYS_MIN}..{RETENTION_DAYS_MAX}, default 30)."
    )


async def _config(info: Info) -> DebugLoggingConfig:
    settings = await debug_settings.debug_logging_config(info.context)
    return DebugLoggingConfig(
        enabled=settings.enabled,
        allow_users=settings.allow_users,
        retention_days=settings.retention_days,
    )


def debug_logging_config_field() -> Any:
    """``ChatConfig.debugLogging`` (any signed-in user reads it)."""
    return strawberry.field(resolver=_config, description="Debug logging of model calls.")


async def _opt_in(info: Info) -> bool | None:
    return await debug_settings.debug_logging_opt_in(info.context)


def viewer_opt_in_field() -> Any:
    """``Viewer.debugLoggingOptIn``."""
    return strawberry.field(
        resolver=_opt_in,
        description="Your own choice for your chats' debug logging; null: none made "
        "(the deployment's setting applies). Counts only while allowUsers.",
    )


@strawberry.input(description="Only the fields given (and not null) change.")
class UpdateDebugLoggingConfigInput:
    enabled: bool | None = None
    allow_users: bool | None = None
    retention_days: int | None = strawberry.field(
        default=None, description=f"{RETENTION_DAYS_MIN}..{RETENTION_DAYS_MAX}."
    )


@strawberry.type
class UpdateDebugLoggingConfigPayload:
    debug_logging_config: DebugLoggingConfig
    warnings: list[str]


@strawberry.input
class SetDebugLoggingOptInInput:
    enabled: bool | None = strawberry.field(description="true or false; null clears your choice.")


@strawberry.type
class SetDebugLoggingOptInPayload:
    viewer: Annotated[Viewer, strawberry.lazy("schema.user")]
    warnings: list[str]


@strawberry.type
class DebugSettingsMutations:
    @strawberry.mutation(description="Change debug logging (MANAGE_DEPLOYMENT_CONFIG).")
    async def update_debug_logging_config(
        self, info: Info, input: UpdateDebugLoggingConfigInput
    ) -> UpdateDebugLoggingConfigPayload:
        changes = debug_settings.DebugLoggingChanges(
            enabled=input.enabled,
            allow_users=input.allow_users,
            retention_days=input.retention_days,
        )
        settings = await debug_settings.update_debug_logging_config(info.context, changes)
        config = DebugLoggingConfig(
            enabled=settings.enabled,
            allow_users=settings.allow_users,
            retention_days=settings.retention_days,
        )
        return UpdateDebugLoggingConfigPayload(debug_logging_config=config, warnings=[])

    @strawberry.mutation(
        description="Opt your chats in or out of debug logging. FORBIDDEN (reason "
        "DEBUG_LOGGING_FORCED or DEBUG_LOGGING_NOT_ALLOWED) unless allowUsers."
    )
    async def set_debug_logging_opt_in(
        self, info: Info, input: SetDebugLoggingOptInInput
    ) -> SetDebugLoggingOptInPayload:
        from schema.user import Viewer

        await debug_settings.set_debug_logging_opt_in(info.context, input.enabled)
        return SetDebugLoggingOptInPayload(viewer=Viewer(), warnings=[])
