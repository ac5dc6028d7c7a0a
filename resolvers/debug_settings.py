"""Who may turn debug logging on or off, and where.

The deployment setting (``enabled``, ``allowUsers``, ``retentionDays``) needs
MANAGE_DEPLOYMENT_CONFIG to change and any signed-in user to read. A user's own
opt-in, and the override on a chat they own, are theirs to set only while the
deployment lets users choose (``allowUsers``); otherwise the refusal is
FORBIDDEN with ``extensions.reason``: ``DEBUG_LOGGING_FORCED`` (on for everyone)
or ``DEBUG_LOGGING_NOT_ALLOWED`` (off, users may not choose). An admin
(MANAGE_DEPLOYMENT_CONFIG) sets any chat's override; for anyone else another
user's chat is NOT_FOUND. Precedence is in ``db.debug_runs``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tortoise.transactions import in_transaction

from db import debug_runs
from db.debug_runs import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN, DebugLoggingSettings
from db.models import Chat
from db.vocabulary import ErrorCode, Permission
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, not_found
from resolvers.permissions import has_permission, require_permission, require_viewer

FORCED = "DEBUG_LOGGING_FORCED"
NOT_ALLOWED = "DEBUG_LOGGING_NOT_ALLOWED"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


@dataclass
class DebugLoggingChanges:
    """``None`` leaves a setting as it is."""

    enabled: bool | None = None
    allow_users: bool | None = None
    retention_days: int | None = None


async def debug_logging_config(ctx: RequestContext) -> DebugLoggingSettings:
    require_viewer(ctx)
    return await debug_runs.read_settings()


async def update_debug_logging_config(
    ctx: RequestContext, changes: DebugLoggingChanges
) -> DebugLoggingSettings:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    days = changes.retention_days
    if days is not None and not RETENTION_DAYS_MIN <= days <= RETENTION_DAYS_MAX:
        raise bad_input(
            "retentionDays",
            f"between {RETENTION_DAYS_MIN} and {RETENTION_DAYS_MAX}",
            minimum=RETENTION_DAYS_MIN,
            maximum=RETENTION_DAYS_MAX,
        )
    async with in_transaction() as conn:
        # Concurrent partial updates must not undo each other's fields.
        await conn.execute_query(_LOCK, [debug_runs.SETTINGS_KEY])
        current = debug_runs.parse_settings(
            await debug_runs.read_raw_in(conn, debug_runs.SETTINGS_KEY)
        )
        updated = replace(
            current,
            enabled=current.enabled if changes.enabled is None else changes.enabled,
            allow_users=current.allow_users if changes.allow_users is None else changes.allow_users,
            retention_days=current.retention_days if days is None else days,
        )
        await debug_runs.write_settings(updated, conn)
    return updated


def _refusal(settings: DebugLoggingSettings, what: str) -> ApiError:
    if settings.enabled:
        return ApiError(
            ErrorCode.FORBIDDEN,
            f"{what}: debug logging is on for everyone in this deployment",
            reason=FORCED,
        )
    return ApiError(
        ErrorCode.FORBIDDEN,
        f"{what}: this deployment does not let users turn on debug logging",
        reason=NOT_ALLOWED,
    )


async def debug_logging_opt_in(ctx: RequestContext) -> bool | None:
    return await debug_runs.read_opt_in(require_viewer(ctx).id)


async def set_debug_logging_opt_in(ctx: RequestContext, enabled: bool | None) -> None:
    """``None`` clears the choice; refused unless the deployment lets users choose."""
    viewer = require_viewer(ctx)
    settings = await debug_runs.read_settings()
    if not settings.allow_users:
        raise _refusal(settings, "enabled")
    await debug_runs.write_opt_in(viewer.id, enabled)


async def overridable_chat(ctx: RequestContext, gid: str) -> Chat:
    """The chat whose override the viewer may change: their own, or any for an admin."""
    viewer = require_viewer(ctx)
    key = global_id.decode_uuid(gid, "Chat", field="id")
    rows = Chat.filter(id=key)
    if not has_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG):
        rows = rows.filter(owner_id=viewer.id)
    chat = await rows.first()
    if chat is None:
        raise not_found("chat")
    return chat


async def check_override(ctx: RequestContext, chat: Chat, value: bool | None) -> bool | None:
    """The override to store (null follows the owner's choice); a member may set
    one only while users may choose."""
    if has_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG):
        return value
    viewer = require_viewer(ctx)
    if chat.owner_id != viewer.id:  # type: ignore[attr-defined]
        raise not_found("chat")
    settings = await debug_runs.read_settings()
    if not settings.allow_users:
        raise _refusal(settings, "debugLoggingOverride")
    return value
