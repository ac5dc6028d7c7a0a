"""Money: the spend-limit settings, the period counters holds are taken on, the
holds themselves, and the day rollups every cost summary reads.

Rollups are a ledger: written in the transaction that records a model call and
never reduced when messages or chats are deleted later (the money was spent).
Counters exist for all three periods at once, so switching the period never
needs a recount.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from db.models.user import User
from db.vocabulary import UsageLimitPeriod


class UsageLimitSettings(Model):
    """The deployment's spend-limit settings: a single row (id 1)."""

    id = fields.SmallIntField(primary_key=True)
    enabled = fields.BooleanField(default=False)
    period = fields.CharEnumField(UsageLimitPeriod, max_length=8, default=UsageLimitPeriod.MONTH)
    default_limit_micros = fields.BigIntField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "usage_limit_settings"
        constraints = (
            CheckConstraint(check="id = 1", name="usage_limit_settings_single_row"),
            CheckConstraint(
                check="default_limit_micros IS NULL OR default_limit_micros > 0",
                name="usage_limit_settings_default_positive",
            ),
        )


class SpendCounter(Model):
    """A user's spend and in-flight holds in one period; holds are conditional
    UPDATEs of this one row, so concurrent callers serialise on it."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="spend_counters", on_delete=fields.CASCADE
    )
    period = fields.CharEnumField(UsageLimitPeriod, max_length=8)
    period_start = fields.DatetimeField()
    spent_micros = fields.BigIntField(default=0)
    reserved_micros = fields.BigIntField(default=0)

    class Meta:
        table = "spend_counters"
        unique_together = (("user", "period", "period_start"),)
        constraints = (
            CheckConstraint(check="reserved_micros >= 0", name="spend_counters_reserved"),
        )


class SpendHold(Model):
    """Budget reserved for one model call in flight; settled, released, or swept
    when its worker stops renewing it."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="spend_holds", on_delete=fields.CASCADE
    )
    period = fields.CharEnumField(UsageLimitPeriod, max_length=8)
    period_start = fields.DatetimeField()
    amount_micros = fields.BigIntField()
    worker_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "spend_holds"


class RollupSums(Model):
    """The sums every day rollup keeps (``db.spend`` adds to all of them at once)."""

    id = fields.BigIntField(primary_key=True)
    cost_micros = fields.BigIntField(default=0)
    priced_count = fields.IntField(default=0)
    unpriced_count = fields.IntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    reasoning_tokens = fields.BigIntField(default=0)
    cache_read_tokens = fields.BigIntField(default=0)
    cache_write_tokens = fields.BigIntField(default=0)

    class Meta:
        abstract = True


class CostUserDay(RollupSums):
    """One user's spend on one UTC day."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="cost_days", on_delete=fields.CASCADE
    )
    day = fields.DateField()

    class Meta:
        table = "cost_user_days"
        unique_together = (("user", "day"),)
        indexes = (("day", "user_id"),)


class CostModelDay(RollupSums):
    """One user's spend on one model config on one UTC day (``model_config_id``
    is the nil UUID when unknown); provider and model names are snapshots."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="cost_model_days", on_delete=fields.CASCADE
    )
    day = fields.DateField()
    model_config_id = fields.UUIDField()
    provider = fields.CharField(max_length=32)
    model = fields.CharField(max_length=200)

    class Meta:
        table = "cost_model_days"
        unique_together = (("user", "day", "model_config_id"),)


class CostChatDay(RollupSums):
    """One chat's spend on one UTC day; ``root_chat_id`` rolls sub-agents up.
    No foreign key to chats: a deleted chat's spend stays in the ledger. Gateway
    requests have no chat: they are rows of the nil chat id, one per user."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="cost_chat_days", on_delete=fields.CASCADE
    )
    chat_id = fields.UUIDField()
    root_chat_id = fields.UUIDField()
    day = fields.DateField()

    class Meta:
        table = "cost_chat_days"
        unique_together = (("chat_id", "day", "user"),)
        indexes = (("user_id", "day"), ("root_chat_id", "day"))
