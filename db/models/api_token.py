"""Bearer tokens: login sessions and named API tokens share one table.

Only a SHA-256 of the secret is stored. Tokens are 256-bit random strings, so a
fast hash is enough (no offline guessing to slow down) and lookup is one indexed
equality per request.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from db.models.user import User
from db.vocabulary import TokenKind


class TokenScope(StrEnum):
    """What an API token opens: everything, or only the AI gateway (``/v1/…``),
    for a coding client that should not be able to act through the GraphQL API."""

    ALL = "all"
    GATEWAY = "gateway"


class ApiToken(Model):
    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tokens", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(TokenKind, max_length=16)
    scope = fields.CharEnumField(TokenScope, max_length=16, default=TokenScope.ALL)
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    # The first characters of the secret, so a user can tell tokens apart.
    prefix = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"
        indexes = (("user_id", "kind", "created_at"),)
