"""LLM providers, users' own keys for them, and the model configs chats run on.

API keys are stored only as ``db.secret_box`` ciphertext (``*_ciphertext``);
nothing here ever holds a key in the clear.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model

from db.models.user import User
from db.vocabulary import DEFAULT_COMPRESSION_THRESHOLD, ProviderKind


class Provider(Model):
    id = fields.UUIDField(primary_key=True)
    kind = fields.CharEnumField(ProviderKind, max_length=32, unique=True)
    display_name = fields.CharField(max_length=200)
    base_url = fields.CharField(max_length=2048, null=True)
    enabled = fields.BooleanField(default=True)
    api_key_ciphertext: str | None = fields.TextField(null=True)
    # Key policies: the deployment's key for everyone, users' own keys, and the
    # deployment's key for users without one (needs both of the others).
    central_key_enabled = fields.BooleanField(default=True)
    user_keys_allowed = fields.BooleanField(default=False)
    central_key_fallback = fields.BooleanField(default=False)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="created_providers", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "providers"
        constraints = (
            CheckConstraint(
                check="(central_key_enabled OR user_keys_allowed) AND (NOT central_key_fallback"
                " OR (central_key_enabled AND user_keys_allowed))",
                name="providers_valid_key_policy",
            ),
        )

    @property
    def has_api_key(self) -> bool:
        return self.api_key_ciphertext is not None

    def __repr__(self) -> str:
        return f"<Provider {self.kind} {self.id}>"


class UserProviderKey(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="provider_keys", on_delete=fields.CASCADE
    )
    provider: fields.ForeignKeyRelation[Provider] = fields.ForeignKeyField(
        "models.Provider", related_name="user_keys", on_delete=fields.CASCADE
    )
    api_key_ciphertext = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "user_provider_keys"
        unique_together = (("user", "provider"),)

    def __repr__(self) -> str:
        return f"<UserProviderKey {self.id}>"


class ModelConfig(Model):
    id = fields.UUIDField(primary_key=True)
    provider: fields.ForeignKeyRelation[Provider] = fields.ForeignKeyField(
        "models.Provider", related_name="model_configs", on_delete=fields.CASCADE
    )
    model = fields.CharField(max_length=200)
    display_name = fields.CharField(max_length=200)
    enabled = fields.BooleanField(default=True)
    # At most one non-deleted default (partial unique index below); the resolvers
    # keep it on an enabled config whenever one exists.
    is_default = fields.BooleanField(default=False)
    deleted = fields.BooleanField(default=False)
    deleted_at = fields.DatetimeField(null=True)
    context_limit = fields.BigIntField()
    compression_threshold = fields.SmallIntField(default=DEFAULT_COMPRESSION_THRESHOLD)
    max_output_tokens = fields.IntField(null=True)
    # Integer micro-USD per million tokens (USD 3.00 / Mtok → 3_000_000); NULL is
    # "not priced", never free. Cache prices fall back to the input price.
    input_price_micros = fields.BigIntField(null=True)
    output_price_micros = fields.BigIntField(null=True)
    cache_read_price_micros = fields.BigIntField(null=True)
    cache_write_price_micros = fields.BigIntField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="created_model_configs", null=True, on_delete=fields.SET_NULL
    )
    updated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="updated_model_configs", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "model_configs"
        constraints = (
            UniqueConstraint(
                fields=("is_default",),
                name="model_configs_single_default",
                condition="is_default AND NOT deleted",
            ),
            CheckConstraint(check="context_limit > 0", name="model_configs_context_limit"),
            CheckConstraint(
                check="compression_threshold BETWEEN 0 AND 100",
                name="model_configs_compression_threshold",
            ),
            CheckConstraint(
                check="max_output_tokens IS NULL OR max_output_tokens > 0",
                name="model_configs_max_output_tokens",
            ),
            CheckConstraint(
                check="coalesce(input_price_micros, 0) >= 0"
                " AND coalesce(output_price_micros, 0) >= 0"
                " AND coalesce(cache_read_price_micros, 0) >= 0"
                " AND coalesce(cache_write_price_micros, 0) >= 0",
                name="model_configs_prices",
            ),
        )
