"""Providers, model configs as types, the model catalog, and provider mutations.

API keys are write-only everywhere: inputs accept them, no type has a field
that returns one (``hasApiKey`` / ``hasUserApiKey`` only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry

from db import models
from db.vocabulary import MICROS_PER_USD, ModelUnavailableReason, ProviderKind
from resolvers import global_id, model_configs, providers
from schema.info import Info
from schema.node import Node, global_id_field, row_is

ProviderKindEnum = strawberry.enum(ProviderKind, name="ProviderKind")
ModelUnavailableReasonEnum = strawberry.enum(
    ModelUnavailableReason,
    name="ModelUnavailableReason",
    description="Why a provider cannot be used by the viewer now. MISSING_API_KEY: an "
    "admin must set the central key. USER_API_KEY_REQUIRED: the viewer can fix it by "
    "adding their own key. PROVIDER_DISABLED: an admin disabled the provider.",
)


def _usd(micros: int | None) -> float | None:
    return None if micros is None else micros / MICROS_PER_USD


@strawberry.type(
    description="An LLM provider (one per kind). Needs MANAGE_PROVIDERS to read. The "
    "API key is write-only: only hasApiKey is readable."
)
class Provider(Node):
    id: strawberry.ID = global_id_field("Provider")
    kind: ProviderKind
    display_name: str
    base_url: str | None
    enabled: bool
    has_api_key: bool = strawberry.field(description="Whether a central API key is stored.")
    central_key_enabled: bool = strawberry.field(
        description="The deployment's key may be used for users."
    )
    user_keys_allowed: bool = strawberry.field(description="Users may set their own key.")
    central_key_fallback: bool = strawberry.field(
        description="Users without their own key use the central key (needs both others)."
    )
    created_at: datetime
    updated_at: datetime
    is_type_of = row_is(models.Provider)

    @strawberry.field(description="Its model configs (not deleted), oldest first.")
    async def model_configs(self, root: models.Provider) -> list[ModelConfig]:
        return cast(list[ModelConfig], await model_configs.provider_configs(root))


@strawberry.type(
    description="A model chats can run on. Prices are USD per million tokens (stored as "
    "integer micro-USD; a message's costMicros = Σ tokens × price ÷ 10⁶)."
)
class ModelConfig(Node):
    id: strawberry.ID = global_id_field("ModelConfig")
    model: str = strawberry.field(description="The provider's model name.")
    display_name: str
    enabled: bool
    is_default: bool = strawberry.field(description="Used when a chat names no model.")
    deleted: bool
    context_limit: int = strawberry.field(description="Tokens.")
    compression_threshold: int = strawberry.field(
        description="Compact when context usage reaches this percent (a user may override)."
    )
    max_output_tokens: int | None
    created_at: datetime
    updated_at: datetime
    is_type_of = row_is(models.ModelConfig)

    @strawberry.field
    async def provider_kind(self, root: models.ModelConfig) -> ProviderKind:
        loaded = root.provider
        provider = loaded if isinstance(loaded, models.Provider) else await loaded
        return ProviderKind(provider.kind)

    @strawberry.field(description="Its provider; null unless the viewer has MANAGE_PROVIDERS.")
    async def provider(self, root: models.ModelConfig, info: Info) -> Provider | None:
        return cast(Provider | None, await model_configs.provider_of(info.context, root))

    @strawberry.field(description="Null: not priced.")
    def input_price_per_million_tokens(self, root: models.ModelConfig) -> float | None:
        return _usd(root.input_price_micros)

    @strawberry.field(description="Null: not priced.")
    def output_price_per_million_tokens(self, root: models.ModelConfig) -> float | None:
        return _usd(root.output_price_micros)

    @strawberry.field(description="Null: the input price applies.")
    def cache_read_price_per_million_tokens(self, root: models.ModelConfig) -> float | None:
        return _usd(root.cache_read_price_micros)

    @strawberry.field(description="Null: the input price applies.")
    def cache_write_price_per_million_tokens(self, root: models.ModelConfig) -> float | None:
        return _usd(root.cache_write_price_micros)


@strawberry.type(description="A provider as the viewer sees it in the model catalog.")
class ModelProvider:
    @strawberry.field(description="The provider's global id (for setUserProviderKey).")
    def provider_id(self, root: providers.CatalogEntry) -> strawberry.ID:
        return strawberry.ID(global_id.encode("Provider", root.provider_id))

    kind: ProviderKind
    display_name: str
    available: bool = strawberry.field(description="The viewer can chat with it now.")
    unavailable_reason: ModelUnavailableReason | None
    user_keys_allowed: bool
    has_user_api_key: bool = strawberry.field(description="The viewer has stored a key.")
    central_key_fallback: bool = strawberry.field(
        description="A central key serves users who have no key of their own."
    )
    models: list[ModelConfig] = strawberry.field(description="Its enabled model configs.")


@strawberry.input
class CreateProviderInput:
    kind: ProviderKind
    display_name: str | None = None
    base_url: str | None = strawberry.field(
        default=None, description="Absolute http(s) URL; required for OPENAI_COMPATIBLE."
    )
    enabled: bool = True
    api_key: str | None = strawberry.field(
        default=None, description="Write-only central key, at most 10240 bytes."
    )
    central_key_enabled: bool = True
    user_keys_allowed: bool = False
    central_key_fallback: bool = False


@strawberry.input(description="Only the fields given change.")
class UpdateProviderInput:
    id: strawberry.ID
    display_name: str | None = strawberry.UNSET
    base_url: str | None = strawberry.field(default=strawberry.UNSET, description="null clears.")
    enabled: bool | None = strawberry.UNSET
    api_key: str | None = strawberry.field(
        default=strawberry.UNSET, description="A string sets the central key; null clears it."
    )
    central_key_enabled: bool | None = strawberry.UNSET
    user_keys_allowed: bool | None = strawberry.UNSET
    central_key_fallback: bool | None = strawberry.UNSET


@strawberry.input
class DeleteProviderInput:
    id: strawberry.ID


@strawberry.type
class ProviderPayload:
    provider: Provider
    warnings: list[str]


@strawberry.type
class DeleteProviderPayload:
    deleted_id: strawberry.ID
    warnings: list[str]


@strawberry.input
class SetUserProviderKeyInput:
    provider_id: strawberry.ID
    api_key: str = strawberry.field(description="Write-only, at most 10240 bytes.")


@strawberry.input
class ClearUserProviderKeyInput:
    provider_id: strawberry.ID


@strawberry.type
class UserProviderKeyPayload:
    provider: ModelProvider
    warnings: list[str]


def given(data: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The input's fields that were given (not UNSET), by snake_case name."""
    values = {name: getattr(data, name) for name in names}
    return {k: v for k, v in values.items() if v is not strawberry.UNSET}


_PROVIDER_FIELDS = (
    "display_name",
    "base_url",
    "enabled",
    "api_key",
    "central_key_enabled",
    "user_keys_allowed",
    "central_key_fallback",
)


def _row(value: Any) -> Any:
    return value


@strawberry.type
class ProviderQueries:
    @strawberry.field(description="Every provider. Needs MANAGE_PROVIDERS.")
    async def providers(self, info: Info) -> list[Provider]:
        return cast(list[Provider], await providers.providers(info.context))

    @strawberry.field(
        description="What the viewer can chat with: every provider, whether it is usable "
        "now (and why not), and its enabled model configs."
    )
    async def models(self, info: Info) -> list[ModelProvider]:
        return cast(list[ModelProvider], await providers.catalog(info.context))


@strawberry.type
class ProviderMutations:
    @strawberry.mutation(description="Add a provider (one per kind). Needs MANAGE_PROVIDERS.")
    async def create_provider(self, info: Info, input: CreateProviderInput) -> ProviderPayload:
        values = given(input, ("kind", *_PROVIDER_FIELDS))
        result = await providers.create_provider(info.context, values)
        return ProviderPayload(provider=_row(result.provider), warnings=result.warnings)

    @strawberry.mutation(description="Change a provider. Needs MANAGE_PROVIDERS.")
    async def update_provider(self, info: Info, input: UpdateProviderInput) -> ProviderPayload:
        values = given(input, _PROVIDER_FIELDS)
        result = await providers.update_provider(info.context, input.id, values)
        return ProviderPayload(provider=_row(result.provider), warnings=result.warnings)

    @strawberry.mutation(
        description="Delete a provider with its model configs and users' keys. "
        "Needs MANAGE_PROVIDERS."
    )
    async def delete_provider(
        self, info: Info, input: DeleteProviderInput
    ) -> DeleteProviderPayload:
        warnings = await providers.delete_provider(info.context, input.id)
        return DeleteProviderPayload(deleted_id=input.id, warnings=warnings)

    @strawberry.mutation(
        description="Store your own API key for a provider that allows user keys "
        "(BAD_USER_INPUT on providerId otherwise)."
    )
    async def set_user_provider_key(
        self, info: Info, input: SetUserProviderKeyInput
    ) -> UserProviderKeyPayload:
        entry = await providers.set_user_provider_key(
            info.context, input.provider_id, input.api_key
        )
        return UserProviderKeyPayload(provider=_row(entry), warnings=[])

    @strawberry.mutation(description="Remove your own API key for a provider.")
    async def clear_user_provider_key(
        self, info: Info, input: ClearUserProviderKeyInput
    ) -> UserProviderKeyPayload:
        entry = await providers.clear_user_provider_key(info.context, input.provider_id)
        return UserProviderKeyPayload(provider=_row(entry), warnings=[])
