"""Reading and changing the deployment's chat settings.

Any signed-in user reads the retention period, the workspace TTL and the
template allowlist (clients show them). The explore-model override and the
plan-mode instructions need MANAGE_DEPLOYMENT_CONFIG to read; they are resolved
only when asked for, so a member can still read the rest. Only holders of
MANAGE_DEPLOYMENT_CONFIG change settings. Every field of an update is validated
before any is written, in the transaction that writes them, so a bad value
changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from db import chat_config
from db.models import ModelConfig, WorkspaceTemplate
from db.vocabulary import (
    CHAT_RETENTION_DAYS_MAX,
    WORKSPACE_TTL_MAX_S,
    WORKSPACE_TTL_MIN_S,
    Permission,
)
from db.workspace_ttl import ttl_in_bounds
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.permissions import require_permission, require_viewer
from resolvers.workspace_templates import TYPE_NAME as TEMPLATE_TYPE

# ``ChatConfigChanges.explore_model_override_id`` when not given: leave it as it is.
KEEP: Any = object()
INVALID_MODEL_CONFIG = "Invalid model config."
_READ_KEYS = (
    chat_config.RETENTION_DAYS_KEY,
    chat_config.WORKSPACE_TTL_KEY,
    chat_config.TEMPLATE_ALLOWLIST_KEY,
)


@dataclass
class ChatConfigView:
    chat_retention_days: int
    workspace_ttl_seconds: int
    template_allowlist: list[str]  # template global ids


@dataclass
class ExploreModelOverrideView:
    model_config: ModelConfig | None
    has_malformed_override: bool


@dataclass
class ChatConfigChanges:
    """``None`` leaves a setting as it is, except the explore override, where
    ``KEEP`` leaves it and ``None`` clears it."""

    chat_retention_days: int | None = None
    template_allowlist: list[str] | None = None
    workspace_ttl_seconds: int | None = None
    explore_model_override_id: Any = KEEP
    plan_mode_instructions: str | None = None


async def read_chat_config(ctx: RequestContext) -> ChatConfigView:
    require_viewer(ctx)
    values = await chat_config.read_many(_READ_KEYS)
    allowlist = chat_config.parse_template_allowlist(values.get(chat_config.TEMPLATE_ALLOWLIST_KEY))
    ttl_ms = chat_config.parse_workspace_ttl_ms(values.get(chat_config.WORKSPACE_TTL_KEY))
    return ChatConfigView(
        chat_retention_days=chat_config.parse_retention_days(
            values.get(chat_config.RETENTION_DAYS_KEY)
        ),
        workspace_ttl_seconds=ttl_ms // 1000,
        template_allowlist=[global_id.encode(TEMPLATE_TYPE, key) for key in allowlist],
    )


async def explore_model_override(ctx: RequestContext) -> ExploreModelOverrideView:
    """The stored override: a value that is not the id of an existing (not deleted)
    model config reads as no config with ``has_malformed_override``, so an admin
    sees it and can clear it. A disabled config is returned as it is."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    key, malformed = await chat_config.explore_model_override()
    if key is None:
        return ExploreModelOverrideView(None, malformed)
    row = await ModelConfig.filter(id=key, deleted=False).select_related("provider").first()
    return ExploreModelOverrideView(row, row is None)


async def plan_mode_instructions(ctx: RequestContext) -> str:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    return await chat_config.plan_mode_instructions()


# ---------------------------------------------------------------- validation


def _check_retention(days: int) -> int:
    if not 0 <= days <= CHAT_RETENTION_DAYS_MAX:
        raise bad_input(
            "chatRetentionDays", f"between 0 (keep forever) and {CHAT_RETENTION_DAYS_MAX}"
        )
    return days


def _check_workspace_ttl(seconds: int) -> int:
    """The stored value: milliseconds."""
    if seconds != 0 and not ttl_in_bounds(seconds):
        raise bad_input(
            "workspaceTtlSeconds",
            f"0 (each template's default) or {WORKSPACE_TTL_MIN_S} to {WORKSPACE_TTL_MAX_S}",
            minimum=WORKSPACE_TTL_MIN_S,
            maximum=WORKSPACE_TTL_MAX_S,
        )
    return seconds * 1000


def _check_instructions(text: str) -> str:
    cleaned = text.strip()
    limit = chat_config.PLAN_MODE_INSTRUCTIONS_MAX
    if len(cleaned) > limit:
        raise bad_input("planModeInstructions", f"at most {limit} characters", maximum=limit)
    if "\x00" in cleaned:
        raise bad_input("planModeInstructions", "must not contain NUL characters")
    return cleaned


def _allowlist_keys(gids: list[str]) -> list[tuple[int, uuid.UUID]]:
    """Decoded, first occurrence of each id kept, with its index for errors."""
    seen: set[uuid.UUID] = set()
    keys: list[tuple[int, uuid.UUID]] = []
    for index, gid in enumerate(gids):
        key = global_id.decode_uuid(gid, TEMPLATE_TYPE, field=f"templateAllowlist[{index}]")
        if key not in seen:
            seen.add(key)
            keys.append((index, key))
    return keys


async def _check_allowlist(keys: list[tuple[int, uuid.UUID]], conn: Any) -> list[uuid.UUID]:
    """Each id must be an existing, non-deprecated template (held until commit)."""
    wanted = [key for _, key in keys]
    usable = set(
        await WorkspaceTemplate.filter(id__in=wanted, deprecated=False)
        .using_db(conn)
        .select_for_update()
        .values_list("id", flat=True)
    )
    for index, key in keys:
        if key not in usable:
            raise bad_input(f"templateAllowlist[{index}]", "no such template, or it is deprecated")
    return wanted


def _override_key(gid: str) -> uuid.UUID:
    decoded = global_id.decode(gid)
    if decoded is not None and decoded[0] == "ModelConfig":
        try:
            return uuid.UUID(decoded[1])
        except ValueError:
            pass
    raise bad_input("exploreModelOverrideId", INVALID_MODEL_CONFIG)


async def _check_override(key: uuid.UUID, conn: Any) -> None:
    """An existing, enabled model config (held until commit)."""
    found = (
        await ModelConfig.filter(id=key, enabled=True, deleted=False)
        .using_db(conn)
        .select_for_update()
        .exists()
    )
    if not found:
        raise bad_input("exploreModelOverrideId", INVALID_MODEL_CONFIG)


# ---------------------------------------------------------------- update


async def update_chat_config(ctx: RequestContext, changes: ChatConfigChanges) -> ChatConfigView:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    writes: dict[str, Any] = {}  # key → value; None deletes the key
    if changes.chat_retention_days is not None:
        days = _check_retention(changes.chat_retention_days)
        writes[chat_config.RETENTION_DAYS_KEY] = days
    if changes.workspace_ttl_seconds is not None:
        ttl_ms = _check_workspace_ttl(changes.workspace_ttl_seconds)
        writes[chat_config.WORKSPACE_TTL_KEY] = ttl_ms
    if changes.plan_mode_instructions is not None:
        text = _check_instructions(changes.plan_mode_instructions)
        writes[chat_config.PLAN_MODE_INSTRUCTIONS_KEY] = text or None
    allowlist = None
    if changes.template_allowlist is not None:
        allowlist = _allowlist_keys(changes.template_allowlist)
    override: uuid.UUID | None = None
    wanted_override = changes.explore_model_override_id
    if wanted_override is not KEEP:
        override = None if wanted_override is None else _override_key(wanted_override)
        writes[chat_config.EXPLORE_MODEL_OVERRIDE_KEY] = None if override is None else str(override)
    async with in_transaction() as conn:
        if allowlist is not None:
            kept = await _check_allowlist(allowlist, conn)
            writes[chat_config.TEMPLATE_ALLOWLIST_KEY] = chat_config.allowlist_value(kept)
        if override is not None:
            await _check_override(override, conn)
        for key, value in writes.items():
            if value is None:
                await chat_config.delete_raw(key, conn)
            else:
                await chat_config.write_raw(key, value, conn)
    return await read_chat_config(ctx)
