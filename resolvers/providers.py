"""LLM providers: admin management, users' own keys, and the model catalog.

API keys are write-only: they are validated, encrypted with ``ctx.secrets`` and
stored; no resolver returns, logs or echoes one (errors name the field only).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from db.model_resolution import (
    central_serves_users,
    lock_default,
    needs_key,
    provider_access,
    settle_default,
)
from db.models import ModelConfig, Provider, UserProviderKey
from db.secret_box import SecretBox
from db.vocabulary import (
    BASE_URL_REQUIRED_KINDS,
    CONFIG_CHANNEL,
    PROVIDER_API_KEY_MAX_BYTES,
    PROVIDER_BASE_URL_MAX,
    PROVIDER_DISPLAY_NAME_MAX,
    ModelUnavailableReason,
    Permission,
    ProviderKind,
)
from events.payloads import ConfigChanged
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import bad_input, conflict, not_found
from resolvers.permissions import has_permission, require_permission, require_viewer

log = logging.getLogger(__name__)

DEFAULT_DISPLAY_NAMES = {
    ProviderKind.OPENAI: "OpenAI",
    ProviderKind.OPENAI_COMPATIBLE: "OpenAI-compatible",
    ProviderKind.ANTHROPIC: "Anthropic",
    ProviderKind.SCRIPTED: "Scripted",
}
POLICY_FIELDS = ("central_key_enabled", "user_keys_allowed", "central_key_fallback")
_UPSERT_USER_KEY = """
INSERT INTO user_provider_keys (user_id, provider_id, api_key_ciphertext, created_at, updated_at)
VALUES ($1, $2, $3, now(), now())
ON CONFLICT (user_id, provider_id)
DO UPDATE SET api_key_ciphertext = EXCLUDED.api_key_ciphertext, updated_at = now()
"""


async def publish_config(ctx: RequestContext, kind: str, key: uuid.UUID) -> None:
    """Tell every replica to drop cached config; after commit, failures only logged."""
    if ctx.events is None:
        return
    try:
        await ctx.events.hub.publish(CONFIG_CHANNEL, ConfigChanged(kind, key))
    except Exception:
        log.exception("publishing a config event failed")


def secret_box(ctx: RequestContext) -> SecretBox:
    if ctx.secrets is None:
        raise RuntimeError("no SecretBox in the request context")
    return ctx.secrets


# ---------------------------------------------------------------- validation


def check_display_name(value: str, field_name: str = "displayName") -> str:
    name = value.strip()
    if not name or len(name) > PROVIDER_DISPLAY_NAME_MAX:
        raise bad_input(field_name, f"1 to {PROVIDER_DISPLAY_NAME_MAX} characters")
    return name


def check_base_url(value: str | None, kind: ProviderKind) -> str | None:
    if value is None:
        if kind in BASE_URL_REQUIRED_KINDS:
            raise bad_input("baseUrl", f"required for {kind.name} providers")
        return None
    url = value.strip()
    if len(url) > PROVIDER_BASE_URL_MAX:
        raise bad_input("baseUrl", f"at most {PROVIDER_BASE_URL_MAX} characters")
    reason = "must be an absolute http:// or https:// URL"
    if not url.isprintable() or any(c.isspace() for c in url):
        raise bad_input("baseUrl", reason)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise bad_input("baseUrl", reason) from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise bad_input("baseUrl", reason)
    if parts.username is not None or parts.password is not None:
        raise bad_input("baseUrl", "must not contain credentials; set apiKey instead")
    if parts.fragment:
        raise bad_input("baseUrl", "must not have a #fragment")
    return url.rstrip("/")


def check_api_key(value: str, field_name: str = "apiKey") -> str:
    """The trimmed key; the messages never repeat it."""
    key = value.strip()
    if not key:
        raise bad_input(field_name, "must not be empty (use null to clear it)")
    if len(key.encode()) > PROVIDER_API_KEY_MAX_BYTES:
        raise bad_input(
            field_name,
            f"at most {PROVIDER_API_KEY_MAX_BYTES} bytes",
            maximum=PROVIDER_API_KEY_MAX_BYTES,
        )
    if not key.isprintable():
        raise bad_input(field_name, "must not contain control characters")
    return key


def check_policies(central: bool, user: bool, fallback: bool) -> None:
    if not (central or user):
        raise bad_input("centralKeyEnabled", "enable the central key, user keys, or both")
    if fallback and not (central and user):
        raise bad_input("centralKeyFallback", "needs both centralKeyEnabled and userKeysAllowed")


def _warnings(provider: Provider) -> list[str]:
    if not needs_key(provider.kind):
        return []
    out = []
    if central_serves_users(provider) and not provider.has_api_key:
        if provider.user_keys_allowed:
            out.append("No central API key is set: only users with their own key can use it.")
        else:
            out.append("No API key is set: nobody can use this provider until one is.")
    if provider.has_api_key and not provider.central_key_enabled:
        out.append("The central API key is stored but unused while centralKeyEnabled is false.")
    return out


# ---------------------------------------------------------------- admin


@dataclass
class ProviderResult:
    provider: Provider
    warnings: list[str] = field(default_factory=list)


async def providers(ctx: RequestContext) -> list[Provider]:
    require_permission(ctx, Permission.MANAGE_PROVIDERS)
    return list(await Provider.all().order_by("created_at", "id"))


async def providers_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, Provider]:
    if ctx.auth_error is not None or not has_permission(ctx, Permission.MANAGE_PROVIDERS):
        return {}
    return {p.id: p for p in await Provider.filter(id__in=keys)}


def provider_key(gid: str, field_name: str = "id") -> uuid.UUID:
    return global_id.decode_uuid(gid, "Provider", field=field_name)


async def create_provider(ctx: RequestContext, values: dict[str, Any]) -> ProviderResult:
    """``values``: kind, and optionally display_name, base_url, enabled, api_key and
    the three policies (defaults: central key only)."""
    viewer = require_permission(ctx, Permission.MANAGE_PROVIDERS)
    kind = ProviderKind(values["kind"])  # Strawberry passes input enums as values
    name = values.get("display_name")
    policy = {
        "central_key_enabled": values.get("central_key_enabled", True),
        "user_keys_allowed": values.get("user_keys_allowed", False),
        "central_key_fallback": values.get("central_key_fallback", False),
    }
    row = Provider(
        kind=kind,
        display_name=check_display_name(name if name is not None else DEFAULT_DISPLAY_NAMES[kind]),
        base_url=check_base_url(values.get("base_url"), kind),
        enabled=bool(values.get("enabled", True)),
        created_by_id=viewer.id,
        **{k: bool(v) for k, v in policy.items()},
    )
    check_policies(row.central_key_enabled, row.user_keys_allowed, row.central_key_fallback)
    api_key = values.get("api_key")
    if api_key is not None:
        row.api_key_ciphertext = secret_box(ctx).encrypt(check_api_key(api_key))
    if await Provider.filter(kind=kind).exists():
        raise conflict(f"a {kind.name} provider already exists", kind=kind.name)
    try:
        await row.save()
    except IntegrityError:
        if await Provider.filter(kind=kind).exists():  # lost a race for the same kind
            raise conflict(f"a {kind.name} provider already exists", kind=kind.name) from None
        raise
    await publish_config(ctx, "provider", row.id)
    return ProviderResult(row, _warnings(row))


async def _managed_provider(ctx: RequestContext, gid: str, conn: Any) -> Provider:
    key = provider_key(gid)
    row = await Provider.filter(id=key).using_db(conn).select_for_update().first()
    if row is None:
        raise not_found("provider")
    return row


async def update_provider(ctx: RequestContext, gid: str, values: dict[str, Any]) -> ProviderResult:
    """Only the keys present change; ``api_key: None`` clears the central key,
    ``base_url: None`` clears the URL. The kind never changes."""
    require_permission(ctx, Permission.MANAGE_PROVIDERS)
    async with in_transaction() as conn:
        row = await _managed_provider(ctx, gid, conn)
        if "display_name" in values:
            if values["display_name"] is None:
                raise bad_input("displayName", "must not be null")
            row.display_name = check_display_name(values["display_name"])
        if "base_url" in values:
            row.base_url = check_base_url(values["base_url"], row.kind)
        for name in ("enabled", *POLICY_FIELDS):
            if name in values:
                if values[name] is None:
                    raise bad_input(input_name(name), "must not be null")
                setattr(row, name, bool(values[name]))
        check_policies(row.central_key_enabled, row.user_keys_allowed, row.central_key_fallback)
        if "api_key" in values:
            raw = values["api_key"]
            row.api_key_ciphertext = (
                None if raw is None else secret_box(ctx).encrypt(check_api_key(raw))
            )
        await row.save(using_db=conn)
    await publish_config(ctx, "provider", row.id)
    return ProviderResult(row, _warnings(row))


def input_name(snake: str) -> str:
    """``central_key_enabled`` → ``centralKeyEnabled`` (the GraphQL input field)."""
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


async def delete_provider(ctx: RequestContext, gid: str) -> list[str]:
    """Deletes the provider with its model configs and users' keys; the default
    moves to another enabled model config if it was one of them."""
    require_permission(ctx, Permission.MANAGE_PROVIDERS)
    async with in_transaction() as conn:
        await lock_default(conn)  # first, as everywhere: a fixed lock order
        row = await _managed_provider(ctx, gid, conn)
        had_default = (
            await ModelConfig.filter(provider_id=row.id, is_default=True, deleted=False)
            .using_db(conn)
            .exists()
        )
        await row.delete(using_db=conn)
        default = await settle_default(conn)
    warnings = []
    if had_default:
        warnings.append(
            f"The default model is now {default.display_name!r}."
            if default is not None
            else "No enabled model config is left: chats cannot start until one exists."
        )
    await publish_config(ctx, "provider", row.id)
    if had_default and default is not None:
        await publish_config(ctx, "model_config", default.id)
    return warnings


# ---------------------------------------------------------------- users' keys and catalog


@dataclass
class CatalogEntry:
    """One provider as the viewer sees it; ``models`` are its enabled configs."""

    provider_id: uuid.UUID
    kind: ProviderKind
    display_name: str
    available: bool
    unavailable_reason: ModelUnavailableReason | None
    user_keys_allowed: bool
    has_user_api_key: bool
    central_key_fallback: bool
    models: list[ModelConfig]


def _entry(provider: Provider, has_user_key: bool, models: list[ModelConfig]) -> CatalogEntry:
    access = provider_access(provider, has_user_key=has_user_key)
    return CatalogEntry(
        provider_id=provider.id,
        kind=ProviderKind(provider.kind),
        display_name=provider.display_name,
        available=access.available,
        unavailable_reason=access.reason,
        user_keys_allowed=provider.user_keys_allowed,
        has_user_api_key=has_user_key,
        central_key_fallback=(
            provider.user_keys_allowed and central_serves_users(provider) and provider.has_api_key
        ),
        models=models,
    )


async def catalog(ctx: RequestContext, only: uuid.UUID | None = None) -> list[CatalogEntry]:
    """Every provider with its enabled model configs and whether the viewer can use
    it now. Three queries whatever the size."""
    viewer = require_viewer(ctx)
    rows = Provider.all() if only is None else Provider.filter(id=only)
    found = list(await rows.order_by("created_at", "id"))
    ids = [p.id for p in found]
    configs = (
        await ModelConfig.filter(provider_id__in=ids, enabled=True, deleted=False)
        .select_related("provider")
        .order_by("-is_default", "created_at", "id")
    )
    mine = set(
        await UserProviderKey.filter(user_id=viewer.id, provider_id__in=ids).values_list(
            "provider_id", flat=True
        )
    )
    by_provider: dict[uuid.UUID, list[ModelConfig]] = {p: [] for p in ids}
    for config in configs:
        by_provider[config.provider_id].append(config)  # type: ignore[attr-defined]
    return [_entry(p, p.id in mine, by_provider[p.id]) for p in found]


async def _visible_provider(ctx: RequestContext, gid: str) -> Provider:
    require_viewer(ctx)
    row = await Provider.filter(id=provider_key(gid, "providerId")).first()
    if row is None:
        raise not_found("provider")
    return row


async def set_user_provider_key(ctx: RequestContext, gid: str, api_key: str) -> CatalogEntry:
    """Store the viewer's own key for a provider that allows user keys.

    A provider that does not accept user keys is BAD_USER_INPUT on ``providerId``
    (a deployment setting, readable beforehand as ``userKeysAllowed`` in the
    catalog, not a lack of permission)."""
    viewer = require_viewer(ctx)
    provider = await _visible_provider(ctx, gid)
    if not needs_key(provider.kind):
        raise bad_input("providerId", "this provider needs no API key")
    if not provider.user_keys_allowed:
        raise bad_input("providerId", "this provider does not accept user API keys")
    ciphertext = secret_box(ctx).encrypt(check_api_key(api_key))
    async with in_transaction() as conn:
        await conn.execute_query(_UPSERT_USER_KEY, [viewer.id, provider.id, ciphertext])
    await publish_config(ctx, "user_config", viewer.id)
    [entry] = await catalog(ctx, only=provider.id)
    return entry


async def clear_user_provider_key(ctx: RequestContext, gid: str) -> CatalogEntry:
    """Remove the viewer's key; allowed whatever the provider's policy, idempotent."""
    viewer = require_viewer(ctx)
    provider = await _visible_provider(ctx, gid)
    deleted = await UserProviderKey.filter(user_id=viewer.id, provider_id=provider.id).delete()
    if deleted:
        await publish_config(ctx, "user_config", viewer.id)
    [entry] = await catalog(ctx, only=provider.id)
    return entry
