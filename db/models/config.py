"""Key → JSON settings, deployment-wide and per user."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from db.models.user import User


class SiteConfig(Model):
    key = fields.CharField(max_length=200, primary_key=True)
    value: fields.Field[Any] = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "site_configs"


class UserConfig(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="configs", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=200)
    value: fields.Field[Any] = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "user_configs"
        unique_together = (("user", "key"),)
