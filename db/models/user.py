"""Accounts and groups."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from db.vocabulary import UserRole


class User(Model):
    id = fields.UUIDField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200, null=True)
    email = fields.CharField(max_length=320, null=True)
    password_hash = fields.CharField(max_length=255)
    role = fields.CharEnumField(UserRole, max_length=16, default=UserRole.MEMBER)
    disabled = fields.BooleanField(default=False)
    # The per-user spend-limit override (wins over groups and the default).
    spend_limit_micros = fields.BigIntField(null=True)
    # Permissions granted through the user's groups, kept in step by every group
    # change, so a request's permission check reads the row it already has.
    granted_permissions: fields.Field[Any] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "users"
        indexes = (("created_at", "id"),)
        constraints = (
            CheckConstraint(
                check="spend_limit_micros IS NULL OR spend_limit_micros > 0",
                name="users_spend_limit_positive",
            ),
        )

    def __str__(self) -> str:
        return self.username


class Group(Model):
    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    display_name = fields.CharField(max_length=200, null=True)
    spend_limit_micros = fields.BigIntField(null=True)
    # Permission values (``GRANTABLE_PERMISSIONS`` only) its members gain.
    permissions: fields.Field[Any] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "groups"
        constraints = (
            CheckConstraint(
                check="spend_limit_micros IS NULL OR spend_limit_micros > 0",
                name="groups_spend_limit_positive",
            ),
        )


class GroupMember(Model):
    id = fields.BigIntField(primary_key=True)
    group: fields.ForeignKeyRelation[Group] = fields.ForeignKeyField(
        "models.Group", related_name="members", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="group_memberships", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "group_members"
        unique_together = (("group", "user"),)
        indexes = (("user_id", "group_id"),)
