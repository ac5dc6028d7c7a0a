"""Spend limits as the API shows them: a user's standing in the current period,
the deployment's settings with its overrides, and the mutations that change them.

``UsageLimitStatus`` is read from ``db.usage_limits.LimitStatus`` as it is (the
cost summary shows the same type), so a status is computed in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from db.vocabulary import UsageLimitPeriod, UsageLimitSource
from resolvers import usage_limits
from schema.info import Info
from schema.user import User

if TYPE_CHECKING:
    from schema.group import Group

    BigInt = int  # mypy cannot use a Strawberry scalar as a type; at run time it is one
else:
    from schema.scalars import BigInt

UsageLimitPeriodEnum = strawberry.enum(
    UsageLimitPeriod,
    name="UsageLimitPeriod",
    description="A limit's period, aligned to UTC: a day from midnight, a week from "
    "Monday 00:00, a month from the 1st 00:00.",
)
UsageLimitSourceEnum = strawberry.enum(
    UsageLimitSource,
    name="UsageLimitSource",
    description="Where the limit that applies comes from: NONE (limits off, or no "
    "limit for this user), DEPLOYMENT (the default), GROUP (the lowest override of "
    "the user's groups) or USER (the user's own override).",
)


@strawberry.type(
    description="A user's spend limit and spend in the current period, computed at read "
    "time (no reset job: a new period simply starts from zero)."
)
class UsageLimitStatus:
    source: UsageLimitSource
    period: UsageLimitPeriod
    limit_micros: BigInt | None = strawberry.field(description="Null when unlimited.")
    spent_micros: BigInt = strawberry.field(description="Settled spend in this period.")
    reserved_micros: BigInt = strawberry.field(
        description="Held by model calls in flight (their worst case until they settle)."
    )
    remaining_micros: BigInt | None = strawberry.field(
        description="limit − spent − reserved, never below 0; null when unlimited."
    )
    period_start: datetime
    resets_at: datetime = strawberry.field(description="The end of the period (exclusive).")


@strawberry.type(description="One user's own limit, which wins over groups and the default.")
class UserUsageLimit:
    user: User
    limit_micros: BigInt


@strawberry.type(description="The deployment's spend-limit settings and every override.")
class UsageLimitConfig:
    enabled: bool = strawberry.field(description="Off: nobody is limited, spend still counts.")
    period: UsageLimitPeriod
    default_limit_micros: BigInt | None = strawberry.field(
        description="The limit of users without an override; null: no default (unlimited)."
    )

    @strawberry.field(
        description="Enabled model configs without an input or output price. With limits "
        "on, users limited by them cannot use these models until they are priced."
    )
    async def unpriced_model_count(self) -> int:
        return await usage_limits.unpriced_model_count()

    @strawberry.field(description="Users with their own limit, by username.")
    async def user_overrides(self) -> list[UserUsageLimit]:
        return cast(list[UserUsageLimit], await usage_limits.user_overrides())

    @strawberry.field(description="Groups with a limit (usageLimitMicros), by name.")
    async def group_overrides(
        self,
    ) -> list[Annotated[Group, strawberry.lazy("schema.group")]]:
        return cast(list[Any], await usage_limits.group_overrides())


@strawberry.input(description="All three settings, set together.")
class UpdateUsageLimitConfigInput:
    enabled: bool
    period: UsageLimitPeriod
    default_limit_micros: BigInt | None = strawberry.field(
        description="1 .. 10¹² micro-USD (a million dollars); null: no default."
    )


@strawberry.type
class UpdateUsageLimitConfigPayload:
    usage_limit_config: UsageLimitConfig
    warnings: list[str]


@strawberry.input
class SetUserUsageLimitInput:
    user_id: strawberry.ID
    limit_micros: BigInt | None = strawberry.field(
        description="1 .. 10¹² micro-USD; null clears the override."
    )


@strawberry.type
class SetUserUsageLimitPayload:
    user: User
    usage_limit: UsageLimitStatus = strawberry.field(description="The user's status now.")
    warnings: list[str]


@strawberry.input
class SetGroupUsageLimitInput:
    group_id: strawberry.ID
    limit_micros: BigInt | None = strawberry.field(
        description="1 .. 10¹² micro-USD; null clears the override."
    )


@strawberry.type
class SetGroupUsageLimitPayload:
    group: Annotated[Group, strawberry.lazy("schema.group")]
    warnings: list[str]


@strawberry.type
class UsageLimitMutations:
    @strawberry.mutation(
        description="Turn limits on or off, choose the period and the default limit, in one "
        "step. Needs MANAGE_DEPLOYMENT_CONFIG."
    )
    async def update_usage_limit_config(
        self, info: Info, input: UpdateUsageLimitConfigInput
    ) -> UpdateUsageLimitConfigPayload:
        view = await usage_limits.update_usage_limit_config(
            info.context,
            enabled=input.enabled,
            period=UsageLimitPeriod(input.period),
            default_limit_micros=input.default_limit_micros,
        )
        return UpdateUsageLimitConfigPayload(
            usage_limit_config=cast(UsageLimitConfig, view), warnings=view.warnings
        )

    @strawberry.mutation(
        description="Set or clear one user's own limit. Needs MANAGE_DEPLOYMENT_CONFIG."
    )
    async def set_user_usage_limit(
        self, info: Info, input: SetUserUsageLimitInput
    ) -> SetUserUsageLimitPayload:
        user, status = await usage_limits.set_user_usage_limit(
            info.context, input.user_id, input.limit_micros
        )
        return SetUserUsageLimitPayload(
            user=cast(User, user), usage_limit=cast(UsageLimitStatus, status), warnings=[]
        )

    @strawberry.mutation(
        description="Set or clear a group's limit. Needs MANAGE_DEPLOYMENT_CONFIG."
    )
    async def set_group_usage_limit(
        self, info: Info, input: SetGroupUsageLimitInput
    ) -> SetGroupUsageLimitPayload:
        group = await usage_limits.set_group_usage_limit(
            info.context, input.group_id, input.limit_micros
        )
        return SetGroupUsageLimitPayload(group=cast(Any, group), warnings=[])
