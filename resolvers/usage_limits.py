"""Spend limits in the API: the deployment's settings and overrides, the viewer's
standing, and the one check every mutation that starts model work calls first.

Who may change what: the settings *and* the per-user and per-group overrides need
MANAGE_DEPLOYMENT_CONFIG — a budget is deployment policy, and the permission that
reads ``chatConfig.usageLimits`` (which lists the overrides) is the one that
writes them. Every signed-in user reads their own ``viewer.usageLimit``.

The refusal check (``require_spendable``) is the API's early "no": it reads the
same counters the daemon's hold does and refuses before anything is written, so
an exhausted user never gets a half-started chat or a queued message that can
only fail. It is not what keeps spend under the limit — that is the hold
(``db.spend.hold``) before each model call, which is atomic.

Nothing caches these settings (each hold reads them in its own statement), so a
change is not announced on the config channel: there is nobody to tell.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from db.costing import ModelPrices
from db.model_resolution import default_model_config
from db.models import Chat, Group, ModelConfig, User
from db.spend import LimitFacts, UnpricedModel
from db.usage_limits import LimitSettings, LimitStatus, limit_status, read_settings, write_settings
from db.vocabulary import USAGE_LIMIT_MAX_MICROS, ErrorCode, Permission, UsageLimitPeriod
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, not_found, usage_limit_exceeded
from resolvers.permissions import require_permission, require_viewer

UNPRICED_REASON = "UNPRICED_MODEL"


@dataclass
class UsageLimitConfigView:
    enabled: bool
    period: UsageLimitPeriod
    default_limit_micros: int | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class UserLimitRow:
    user: User
    limit_micros: int


def check_limit(value: int | None, field_name: str) -> int | None:
    """A limit is 1 micro-USD .. ``USAGE_LIMIT_MAX_MICROS``; None means "none"."""
    if value is None:
        return None
    if not 0 < value <= USAGE_LIMIT_MAX_MICROS:
        raise bad_input(
            field_name,
            f"micro-USD from 1 to {USAGE_LIMIT_MAX_MICROS} (a million dollars), or null "
            "for no limit",
            minimum=1,
            maximum=USAGE_LIMIT_MAX_MICROS,
        )
    return value


# ---------------------------------------------------------------- reading


def _view(settings: LimitSettings, warnings: list[str] | None = None) -> UsageLimitConfigView:
    return UsageLimitConfigView(
        settings.enabled, settings.period, settings.default_limit_micros, warnings or []
    )


async def usage_limit_config(ctx: RequestContext) -> UsageLimitConfigView:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    return _view(await read_settings())


def _unpriced() -> Q:
    return Q(input_price_micros__isnull=True) | Q(output_price_micros__isnull=True)


async def unpriced_model_count() -> int:
    """Enabled, non-deleted model configs missing the input or the output price."""
    return await ModelConfig.filter(_unpriced(), enabled=True, deleted=False).count()


async def user_overrides() -> list[UserLimitRow]:
    rows = await User.filter(spend_limit_micros__isnull=False).order_by("username", "id")
    return [UserLimitRow(row, row.spend_limit_micros) for row in rows]


async def group_overrides() -> list[Group]:
    return list(await Group.filter(spend_limit_micros__isnull=False).order_by("name", "id"))


async def viewer_usage_limit(ctx: RequestContext) -> LimitStatus:
    viewer = require_viewer(ctx)
    return await limit_status(viewer.id)


# ---------------------------------------------------------------- changing


async def update_usage_limit_config(
    ctx: RequestContext,
    *,
    enabled: bool,
    period: UsageLimitPeriod,
    default_limit_micros: int | None,
) -> UsageLimitConfigView:
    """All three settings at once (one row, one statement)."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    wanted = LimitSettings(
        enabled=enabled,
        period=UsageLimitPeriod(period),
        default_limit_micros=check_limit(default_limit_micros, "defaultLimitMicros"),
    )
    async with in_transaction() as conn:
        settings = await write_settings(wanted, conn)
    warnings: list[str] = []
    unpriced = await unpriced_model_count() if settings.enabled else 0
    if unpriced:
        warnings.append(
            f"{unpriced} enabled model config(s) have no input or output price: users with "
            "a limit cannot use them until they are priced."
        )
    return _view(settings, warnings)


async def set_user_usage_limit(
    ctx: RequestContext, user_gid: str, limit_micros: int | None
) -> tuple[User, LimitStatus]:
    """The user's own override (None clears it) and their status under it."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    limit = check_limit(limit_micros, "limitMicros")
    key = global_id.decode_uuid(user_gid, "User", field="userId")
    if not await User.filter(id=key).update(spend_limit_micros=limit):
        raise not_found("user")
    return await User.get(id=key), await limit_status(key)


async def set_group_usage_limit(
    ctx: RequestContext, group_gid: str, limit_micros: int | None
) -> Group:
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    limit = check_limit(limit_micros, "limitMicros")
    key = global_id.decode_uuid(group_gid, "Group", field="groupId")
    if not await Group.filter(id=key).update(spend_limit_micros=limit):
        raise not_found("group")
    return await Group.get(id=key)


# ---------------------------------------------------------------- refusals


def facts_of(status: LimitStatus) -> LimitFacts:
    assert status.limit_micros is not None
    return LimitFacts(
        source=status.source,
        period=status.period,
        limit_micros=status.limit_micros,
        spent_micros=status.spent_micros,
        reserved_micros=status.reserved_micros,
        resets_at=status.resets_at,
    )


def unpriced_model(config: ModelConfig) -> ApiError:
    """Limits apply but the model has no prices: nothing could be held for it.

    There is no CONFIG error code; like "no default model", this is BAD_USER_INPUT
    on ``modelConfigId`` — the sender can pick a priced model, and the message
    tells an administrator what to fix."""
    return ApiError(
        ErrorCode.BAD_USER_INPUT,
        str(UnpricedModel(config.display_name)),
        field="modelConfigId",
        reason=UNPRICED_REASON,
        modelConfigId=global_id.encode("ModelConfig", config.id),
    )


async def _model_for(
    model_config_id: uuid.UUID | None, chat_id: uuid.UUID | None
) -> ModelConfig | None:
    """The config the work would run on: the given one, else the chat's, else
    the default."""
    if model_config_id is None and chat_id is not None:
        chat = await Chat.filter(id=chat_id).only("id", "model_config_id").first()
        model_config_id = chat.model_config_id if chat is not None else None
    if model_config_id is None:
        return await default_model_config()
    return await ModelConfig.filter(id=model_config_id, deleted=False).first()


async def require_spendable(
    user_id: uuid.UUID,
    model_config_id: uuid.UUID | None = None,
    *,
    chat_id: uuid.UUID | None = None,
) -> None:
    """Refuse model work for ``user_id`` before anything is written: with
    USAGE_LIMIT_EXCEEDED when spent + reserved has reached their limit, and with
    an actionable error when a limit applies and the model has no prices.

    The model is ``model_config_id``, else ``chat_id``'s, else the default. With
    limits off this costs one read."""
    settings = await read_settings()
    if not settings.enabled:
        return
    status = await limit_status(user_id, settings=settings)
    if status.limit_micros is None:
        return
    if status.exhausted:
        raise usage_limit_exceeded(facts_of(status))
    config = await _model_for(model_config_id, chat_id)
    if config is not None and not ModelPrices.of(config).priced:
        raise unpriced_model(config)
