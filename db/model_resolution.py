"""Which model, endpoint and key a turn runs with, and the default model.

Used by the daemon (``resolve_model``) and by the resolvers (the
key policy in ``provider_access``, the default-model rules in ``settle_default``),
so both sides judge a provider the same way. Imports nothing above ``db``.

Key policy, for providers that need a key (every kind but SCRIPTED):
- a user key is used when the provider allows user keys and the user has one;
- else the central key serves users when central keys are enabled and either
  user keys are not allowed or the central fallback is on;
- else the provider is unusable for this user: USER_API_KEY_REQUIRED when user
  keys are allowed (the user can fix it), MISSING_API_KEY otherwise (an admin must).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tortoise.transactions import in_transaction

from db.costing import ModelPrices
from db.models import ModelConfig, Provider, UserConfig, UserProviderKey
from db.secret_box import SecretBox, SecretBoxError
from db.vocabulary import (
    COMPACTION_THRESHOLD_KEY_PREFIX,
    KEYLESS_PROVIDER_KINDS,
    NO_DEFAULT_MODEL_MESSAGE,
    ChatErrorKind,
    ModelUnavailableReason,
    ProviderKind,
)

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key serialising changes to which model config is the default.
DEFAULT_MODEL_LOCK = 0x6167_6D64_6566  # "agmdef"
SCRIPTED_MODEL = "scripted"
SCRIPTED_DISPLAY_NAME = "Scripted (offline demo)"
SCRIPTED_CONTEXT_LIMIT = 32_000


class KeySource(StrEnum):
    NONE = "none"  # the provider needs no key
    USER = "user"
    CENTRAL = "central"


@dataclass(frozen=True)
class ProviderAccess:
    """Either where the key comes from, or why the provider cannot be used."""

    source: KeySource | None
    reason: ModelUnavailableReason | None

    @property
    def available(self) -> bool:
        return self.reason is None


def needs_key(kind: ProviderKind) -> bool:
    return ProviderKind(kind) not in KEYLESS_PROVIDER_KINDS


def central_serves_users(provider: Provider) -> bool:
    return provider.central_key_enabled and (
        not provider.user_keys_allowed or provider.central_key_fallback
    )


def provider_access(provider: Provider, *, has_user_key: bool) -> ProviderAccess:
    if not provider.enabled:
        return ProviderAccess(None, ModelUnavailableReason.PROVIDER_DISABLED)
    if not needs_key(provider.kind):
        return ProviderAccess(KeySource.NONE, None)
    if provider.user_keys_allowed and has_user_key:
        return ProviderAccess(KeySource.USER, None)
    if central_serves_users(provider) and provider.has_api_key:
        return ProviderAccess(KeySource.CENTRAL, None)
    if provider.user_keys_allowed:
        return ProviderAccess(None, ModelUnavailableReason.USER_API_KEY_REQUIRED)
    return ProviderAccess(None, ModelUnavailableReason.MISSING_API_KEY)


class ModelUnavailable(Exception):
    """The turn cannot run on this model for this user; ``kind`` says why and
    ``provider`` (its kind) which provider, once the model config names one."""

    def __init__(self, kind: ChatErrorKind, message: str, provider: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider


@dataclass(frozen=True)
class ResolvedModel:
    model_config_id: uuid.UUID
    provider_id: uuid.UUID
    provider_kind: ProviderKind
    provider_display_name: str
    base_url: str | None
    model: str
    display_name: str
    context_limit: int
    compression_threshold: int  # the user's override, else the model's
    max_output_tokens: int | None
    prices: ModelPrices
    key_source: KeySource
    api_key: str | None = field(default=None, repr=False)  # never logged


def compaction_threshold_key(model_config_id: uuid.UUID) -> str:
    return f"{COMPACTION_THRESHOLD_KEY_PREFIX}{model_config_id}"


def threshold_value(value: Any) -> int | None:
    """A stored override, or None when absent or malformed (then it is ignored)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 100 else None


async def default_model_config(conn: Any = None) -> ModelConfig | None:
    query = ModelConfig.filter(is_default=True, deleted=False)
    if conn is not None:
        query = query.using_db(conn)
    return await query.first()


async def resolve_model(
    model_config_id: uuid.UUID | None, user_id: uuid.UUID, secrets: SecretBox
) -> ResolvedModel:
    """Everything a turn needs to call the provider, or ``ModelUnavailable``.

    ``None`` means the deployment default. Unknown, deleted or disabled models are
    CONFIG; a disabled provider PROVIDER_DISABLED; no usable key MISSING_KEY.
    """
    rows = ModelConfig.filter(deleted=False).select_related("provider")
    if model_config_id is None:
        config = await rows.filter(is_default=True).first()
        if config is None:
            raise ModelUnavailable(ChatErrorKind.CONFIG, NO_DEFAULT_MODEL_MESSAGE)
    else:
        config = await rows.filter(id=model_config_id).first()
        if config is None:
            raise ModelUnavailable(ChatErrorKind.CONFIG, "The chat's model config does not exist.")
    provider: Provider = config.provider
    kind = ProviderKind(provider.kind).value  # what ``lastError.provider`` names
    if not config.enabled:
        raise ModelUnavailable(
            ChatErrorKind.CONFIG, f"The model {config.display_name!r} is disabled.", kind
        )
    user_key: UserProviderKey | None = None
    if provider.enabled and provider.user_keys_allowed and needs_key(provider.kind):
        user_key = await UserProviderKey.filter(user_id=user_id, provider_id=provider.id).first()
    access = provider_access(provider, has_user_key=user_key is not None)
    name = provider.display_name
    if access.reason is ModelUnavailableReason.PROVIDER_DISABLED:
        raise ModelUnavailable(
            ChatErrorKind.PROVIDER_DISABLED, f"The provider {name!r} is disabled.", kind
        )
    if access.reason is ModelUnavailableReason.USER_API_KEY_REQUIRED:
        raise ModelUnavailable(
            ChatErrorKind.MISSING_KEY,
            f"The provider {name!r} needs your own API key; add one.",
            kind,
        )
    if access.reason is ModelUnavailableReason.MISSING_API_KEY:
        raise ModelUnavailable(
            ChatErrorKind.MISSING_KEY,
            f"The provider {name!r} has no API key; an administrator must set one.",
            kind,
        )
    assert access.source is not None
    api_key: str | None = None
    ciphertext = (
        user_key.api_key_ciphertext
        if access.source is KeySource.USER and user_key is not None
        else provider.api_key_ciphertext
        if access.source is KeySource.CENTRAL
        else None
    )
    if ciphertext is not None:
        try:
            api_key = secrets.decrypt(ciphertext)
        except SecretBoxError:
            log.warning(
                "stored provider key cannot be decrypted",
                extra={"provider": str(provider.id), "key_source": access.source.value},
            )
            raise ModelUnavailable(
                ChatErrorKind.MISSING_KEY,
                f"The stored API key for {name!r} cannot be decrypted (was the deployment "
                "secret changed?); it must be set again.",
                kind,
            ) from None
    override = await UserConfig.filter(
        user_id=user_id, key=compaction_threshold_key(config.id)
    ).first()
    threshold = threshold_value(override.value) if override is not None else None
    return ResolvedModel(
        model_config_id=config.id,
        provider_id=provider.id,
        provider_kind=ProviderKind(provider.kind),
        provider_display_name=provider.display_name,
        base_url=provider.base_url,
        model=config.model,
        display_name=config.display_name,
        context_limit=config.context_limit,
        compression_threshold=threshold if threshold is not None else config.compression_threshold,
        max_output_tokens=config.max_output_tokens,
        prices=ModelPrices.of(config),
        key_source=access.source,
        api_key=api_key,
    )


async def lock_default(conn: Any) -> None:
    """Serialise default-model changes until the transaction ends."""
    await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [DEFAULT_MODEL_LOCK])


async def settle_default(conn: Any) -> ModelConfig | None:
    """Restore the rule after a change: the default is an enabled, non-deleted
    config whenever one exists (preferring one whose provider is enabled, then the
    oldest). Call under ``lock_default`` in the changing transaction."""
    current = await default_model_config(conn)
    if current is not None and current.enabled:
        return current
    if current is not None:
        current.is_default = False
        await current.save(update_fields=["is_default", "updated_at"], using_db=conn)
    enabled = ModelConfig.filter(enabled=True, deleted=False).using_db(conn)
    candidate = (
        await enabled.filter(provider__enabled=True).order_by("created_at", "id").first()
        or await enabled.order_by("created_at", "id").first()
    )
    if candidate is not None:
        candidate.is_default = True
        await candidate.save(update_fields=["is_default", "updated_at"], using_db=conn)
    return candidate


async def ensure_default_scripted_model() -> ModelConfig | None:
    """On a fresh install (no providers at all) create the offline SCRIPTED provider
    and make its model the default, so a first chat gets a streamed reply without
    any API key. Returns the created config, or None when providers exist."""
    async with in_transaction() as conn:
        await lock_default(conn)
        if await Provider.all().using_db(conn).exists():
            return None
        provider = await Provider.create(
            kind=ProviderKind.SCRIPTED, display_name="Scripted", using_db=conn
        )
        config = await ModelConfig.create(
            provider=provider,
            model=SCRIPTED_MODEL,
            display_name=SCRIPTED_DISPLAY_NAME,
            context_limit=SCRIPTED_CONTEXT_LIMIT,
            # Offline and free: priced at zero on purpose, so spend limits accept it.
            input_price_micros=0,
            output_price_micros=0,
            cache_read_price_micros=0,
            cache_write_price_micros=0,
            is_default=True,  # no providers, so no model configs either
            using_db=conn,
        )
    log.info("created the default scripted model config", extra={"model_config": str(config.id)})
    return config
