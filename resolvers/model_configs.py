"""Model configs (admin), the single default, per-user compaction thresholds, and
the check chats use for ``modelConfigId``.

Default rule: among non-deleted configs at most one is the default (a partial
unique index), and it is an enabled one whenever any is enabled. The first
enabled config becomes the default; ``isDefault: true`` moves it; deleting or
disabling the default promotes another enabled config (``settle_default``).
Changes run under one advisory lock so concurrent admins cannot race it.

Prices are USD per million tokens in the API and integer micro-USD per million
tokens in rows (rounded half up to the micro-dollar). A price not given is NULL:
the model is unpriced (its cost unknown), never free; null clears a price.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tortoise.transactions import in_transaction

from db.model_resolution import (
    compaction_threshold_key,
    default_model_config,
    lock_default,
    settle_default,
    threshold_value,
)
from db.models import ModelConfig, Provider, UserConfig
from db.vocabulary import (
    COMPACTION_THRESHOLD_KEY_PREFIX,
    CONTEXT_LIMIT_MAX,
    DEFAULT_COMPRESSION_THRESHOLD,
    MAX_OUTPUT_TOKENS_MAX,
    MICROS_PER_USD,
    MODEL_DISPLAY_NAME_MAX,
    MODEL_NAME_MAX,
    NO_DEFAULT_MODEL_MESSAGE,
    PRICE_MAX_USD,
    ErrorCode,
    Permission,
)
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, not_found
from resolvers.permissions import has_permission, require_permission, require_viewer
from resolvers.providers import input_name, publish_config

# input name → row column, for the four prices
PRICES = {
    "input_price_per_million_tokens": "input_price_micros",
    "output_price_per_million_tokens": "output_price_micros",
    "cache_read_price_per_million_tokens": "cache_read_price_micros",
    "cache_write_price_per_million_tokens": "cache_write_price_micros",
}
_UPSERT_USER_CONFIG = """
INSERT INTO user_configs (user_id, key, value, updated_at) VALUES ($1, $2, $3::jsonb, now())
ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""


def price_micros(value: float | None, field_name: str) -> int | None:
    """Micro-USD per million tokens; None (not priced) stays None, never 0."""
    if value is None:
        return None
    if not math.isfinite(value) or not 0 <= value <= PRICE_MAX_USD:
        raise bad_input(input_name(field_name), f"USD per million tokens, 0 to {PRICE_MAX_USD}")
    micros = Decimal(repr(float(value))) * MICROS_PER_USD
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _text(value: Any, field_name: str, maximum: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > maximum or not text.isprintable():
        raise bad_input(field_name, f"1 to {maximum} printable characters")
    return text


def _apply(row: ModelConfig, values: dict[str, Any]) -> None:
    """Validate and set every given field except ``is_default`` and the provider."""
    if "model" in values:
        row.model = _text(values["model"], "model", MODEL_NAME_MAX)
    if "display_name" in values:
        row.display_name = _text(values["display_name"], "displayName", MODEL_DISPLAY_NAME_MAX)
    if "enabled" in values:
        if values["enabled"] is None:
            raise bad_input("enabled", "must not be null")
        row.enabled = bool(values["enabled"])
    if "context_limit" in values:
        limit = values["context_limit"]
        if limit is None or not 0 < limit <= CONTEXT_LIMIT_MAX:
            raise bad_input("contextLimit", "tokens, greater than 0")
        row.context_limit = limit
    if "compression_threshold" in values:
        pct = values["compression_threshold"]
        if pct is None or not 0 <= pct <= 100:
            raise bad_input("compressionThreshold", "a percentage, 0 to 100")
        row.compression_threshold = pct
    if "max_output_tokens" in values:
        tokens = values["max_output_tokens"]
        if tokens is not None and not 0 < tokens <= MAX_OUTPUT_TOKENS_MAX:
            raise bad_input("maxOutputTokens", "greater than 0, or null for the provider default")
        row.max_output_tokens = tokens
    for name, column in PRICES.items():
        if name in values:
            setattr(row, column, price_micros(values[name], name))


@dataclass
class ModelConfigResult:
    model_config: ModelConfig
    warnings: list[str] = field(default_factory=list)


def _loaded(row: ModelConfig, provider: Provider) -> ModelConfig:
    row.provider = provider
    return row


def _warnings(provider: Provider, default: ModelConfig | None) -> list[str]:
    out = []
    if not provider.enabled:
        out.append("The provider is disabled: this model cannot be used until it is enabled.")
    if default is None:
        out.append("No enabled model config is left: chats cannot start until one exists.")
    return out


async def _announce(
    ctx: RequestContext, changed: uuid.UUID, before: ModelConfig | None, after: ModelConfig | None
) -> None:
    """The changed config, plus the old and new default when the default moved."""
    keys = [changed]
    moved = (before.id if before else None) != (after.id if after else None)
    for other in (before, after) if moved else ():
        if other is not None and other.id not in keys:
            keys.append(other.id)
    for key in keys:
        await publish_config(ctx, "model_config", key)


async def model_configs(ctx: RequestContext) -> list[ModelConfig]:
    """Admins see every non-deleted config, others the enabled ones; default first."""
    require_viewer(ctx)
    rows = ModelConfig.filter(deleted=False)
    if not has_permission(ctx, Permission.MANAGE_PROVIDERS):
        rows = rows.filter(enabled=True)
    return list(await rows.select_related("provider").order_by("-is_default", "created_at", "id"))


async def model_configs_by_ids(
    ctx: RequestContext, keys: list[uuid.UUID]
) -> dict[uuid.UUID, ModelConfig]:
    """Node lookups: admins resolve any (deleted ones too, for history), others only
    enabled, non-deleted configs."""
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    rows = ModelConfig.filter(id__in=keys)
    if not has_permission(ctx, Permission.MANAGE_PROVIDERS):
        rows = rows.filter(enabled=True, deleted=False)
    return {row.id: row for row in await rows.select_related("provider")}


async def provider_of(ctx: RequestContext, row: ModelConfig) -> Provider | None:
    """The config's provider for admins; null for everyone else."""
    if not has_permission(ctx, Permission.MANAGE_PROVIDERS):
        return None
    loaded = row.provider
    return loaded if isinstance(loaded, Provider) else await loaded


async def provider_configs(provider: Provider) -> list[ModelConfig]:
    rows = ModelConfig.filter(provider_id=provider.id, deleted=False)
    return [_loaded(r, provider) for r in await rows.order_by("created_at", "id")]


async def create_model_config(ctx: RequestContext, values: dict[str, Any]) -> ModelConfigResult:
    viewer = require_permission(ctx, Permission.MANAGE_PROVIDERS)
    provider_key = global_id.decode_uuid(values["provider_id"], "Provider", field="providerId")
    provider = await Provider.filter(id=provider_key).first()
    if provider is None:
        raise bad_input("providerId", "no such provider")
    row = ModelConfig(
        provider_id=provider.id,
        compression_threshold=DEFAULT_COMPRESSION_THRESHOLD,
        created_by_id=viewer.id,
        updated_by_id=viewer.id,
    )
    fields = {k: v for k, v in values.items() if k not in {"provider_id", "is_default"}}
    if fields.get("display_name") is None:
        fields["display_name"] = fields.get("model")
    for required in ("model", "context_limit"):
        if fields.get(required) is None:
            raise bad_input(input_name(required), "required")
    _apply(row, fields)
    wants_default = bool(values.get("is_default"))
    if wants_default and not row.enabled:
        raise bad_input("isDefault", "a disabled model config cannot be the default")
    async with in_transaction() as conn:
        await lock_default(conn)
        current = await default_model_config(conn)
        row.is_default = row.enabled and (wants_default or current is None)
        if row.is_default and current is not None:
            current.is_default = False
            await current.save(update_fields=["is_default", "updated_at"], using_db=conn)
        await row.save(using_db=conn)
        default = await settle_default(conn)
        await row.refresh_from_db(using_db=conn)
    await _announce(ctx, row.id, current, default)
    return ModelConfigResult(_loaded(row, provider), _warnings(provider, default))


async def _locked(conn: Any, gid: str) -> ModelConfig:
    key = global_id.decode_uuid(gid, "ModelConfig")
    row = await ModelConfig.filter(id=key, deleted=False).using_db(conn).select_for_update().first()
    if row is None:
        raise not_found("model config")
    return row


async def update_model_config(
    ctx: RequestContext, gid: str, values: dict[str, Any]
) -> ModelConfigResult:
    """Only the keys present change; ``max_output_tokens: None`` clears it."""
    viewer = require_permission(ctx, Permission.MANAGE_PROVIDERS)
    async with in_transaction() as conn:
        await lock_default(conn)
        row = await _locked(conn, gid)
        before = await default_model_config(conn)
        _apply(row, {k: v for k, v in values.items() if k != "is_default"})
        wants = values.get("is_default")
        if wants is True:
            if not row.enabled:
                raise bad_input("isDefault", "a disabled model config cannot be the default")
            await (
                ModelConfig.filter(is_default=True, deleted=False)
                .exclude(id=row.id)
                .using_db(conn)
                .update(is_default=False)
            )
            row.is_default = True
        elif wants is False and row.is_default and row.enabled:
            raise bad_input("isDefault", "make another model config the default instead")
        row.updated_by_id = viewer.id
        await row.save(using_db=conn)
        default = await settle_default(conn)
        await row.refresh_from_db(using_db=conn)
        provider = await Provider.filter(id=row.provider_id).using_db(conn).get()  # type: ignore[attr-defined]
    await _announce(ctx, row.id, before, default)
    return ModelConfigResult(_loaded(row, provider), _warnings(provider, default))


async def delete_model_config(ctx: RequestContext, gid: str) -> list[str]:
    """Soft delete (history keeps pointing at it); drops users' overrides for it."""
    viewer = require_permission(ctx, Permission.MANAGE_PROVIDERS)
    async with in_transaction() as conn:
        await lock_default(conn)
        row = await _locked(conn, gid)
        before = await default_model_config(conn)
        was_default = row.is_default
        row.deleted, row.deleted_at, row.is_default = True, datetime.now(UTC), False
        row.updated_by_id = viewer.id
        await row.save(using_db=conn)
        await UserConfig.filter(key=compaction_threshold_key(row.id)).using_db(conn).delete()
        default = await settle_default(conn)
    await _announce(ctx, row.id, before, default)
    if not was_default:
        return []
    if default is None:
        return ["No enabled model config is left: chats cannot start until one exists."]
    return [f"The default model is now {default.display_name!r}."]


# ---------------------------------------------------------------- chats' model


async def chat_model_config_key(gid: str | None, *, use_default: bool) -> uuid.UUID | None:
    """A chat's ``modelConfigId``: an enabled, non-deleted config; when absent, the
    default (``use_default``) or None (keep the chat's). BAD_USER_INPUT otherwise."""
    if not gid:
        if not use_default:
            return None
        default = await default_model_config()
        if default is None:
            raise ApiError(
                ErrorCode.BAD_USER_INPUT, NO_DEFAULT_MODEL_MESSAGE, field="modelConfigId"
            )
        return default.id
    key = global_id.decode_uuid(gid, "ModelConfig", field="modelConfigId")
    if not await ModelConfig.filter(id=key, deleted=False, enabled=True).exists():
        raise bad_input("modelConfigId", "no enabled model config with this id")
    return key


# ---------------------------------------------------------------- compaction thresholds


@dataclass
class ThresholdRow:
    model_config: ModelConfig
    percent: int | None  # the viewer's override; None when cleared

    @property
    def effective_percent(self) -> int:
        return self.percent if self.percent is not None else self.model_config.compression_threshold


async def _enabled_config(gid: str) -> ModelConfig:
    key = global_id.decode_uuid(gid, "ModelConfig", field="modelConfigId")
    row = (
        await ModelConfig.filter(id=key, deleted=False, enabled=True)
        .select_related("provider")
        .first()
    )
    if row is None:
        raise bad_input("modelConfigId", "no enabled model config with this id")
    return row


async def set_compaction_threshold(ctx: RequestContext, gid: str, percent: int) -> ThresholdRow:
    viewer = require_viewer(ctx)
    config = await _enabled_config(gid)
    if not 0 <= percent <= 100:
        raise bad_input("percent", "a percentage, 0 to 100")
    async with in_transaction() as conn:
        await conn.execute_query(
            _UPSERT_USER_CONFIG, [viewer.id, compaction_threshold_key(config.id), str(percent)]
        )
    await publish_config(ctx, "user_config", viewer.id)
    return ThresholdRow(config, percent)


async def clear_compaction_threshold(ctx: RequestContext, gid: str) -> ThresholdRow:
    viewer = require_viewer(ctx)
    config = await _enabled_config(gid)
    key = compaction_threshold_key(config.id)
    if await UserConfig.filter(user_id=viewer.id, key=key).delete():
        await publish_config(ctx, "user_config", viewer.id)
    return ThresholdRow(config, None)


async def compaction_thresholds(ctx: RequestContext) -> list[ThresholdRow]:
    """The viewer's overrides that apply now (enabled, non-deleted models)."""
    viewer = require_viewer(ctx)
    overrides: dict[uuid.UUID, int] = {}
    for row in await UserConfig.filter(
        user_id=viewer.id, key__startswith=COMPACTION_THRESHOLD_KEY_PREFIX
    ):
        try:
            key = uuid.UUID(row.key.removeprefix(COMPACTION_THRESHOLD_KEY_PREFIX))
        except ValueError:
            continue
        percent = threshold_value(row.value)
        if percent is not None:
            overrides[key] = percent
    if not overrides:
        return []
    configs = (
        await ModelConfig.filter(id__in=list(overrides), deleted=False, enabled=True)
        .select_related("provider")
        .order_by("created_at", "id")
    )
    return [ThresholdRow(c, overrides[c.id]) for c in configs]
