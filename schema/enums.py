"""Enums exposed in the schema are the shared ``db.vocabulary`` enums themselves,
so rows returned by resolvers need no conversion (GraphQL names are the member
names, the database stores the values)."""

from __future__ import annotations

import strawberry

from db.vocabulary import Permission, TokenKind, UserRole

UserRoleEnum = strawberry.enum(UserRole, name="UserRole")
PermissionEnum = strawberry.enum(
    Permission,
    name="Permission",
    description="What the viewer may do; clients read this instead of provoking 401/403.",
)
TokenKindEnum = strawberry.enum(TokenKind, name="TokenKind")

__all__ = ["PermissionEnum", "TokenKindEnum", "UserRoleEnum"]
