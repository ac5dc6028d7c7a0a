"""Cost analytics as the API shows them: a user's spend over UTC days, by model,
root chat and day, the per-user rollup, and a chat's own spend.

Everything reads the day rollups (``db.cost_rollups``), so a summary costs the
same for a user with a thousand messages as for one with a million. Money is
integer micro-USD (``BigInt``). A message of a model without prices counts as
"unpriced": it adds tokens and ``unpricedCount``, never a made-up cost.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from db.cost_rollups import ChatCostRow, UsageSums
from db.models import Chat as ChatRow
from resolvers import costs
from resolvers.pagination import PageArgs
from schema.connection import Connection, connection_of
from schema.info import Info
from schema.provider import ModelConfig

if TYPE_CHECKING:
    from schema.chat import Chat
    from schema.usage_limit import UsageLimitStatus
    from schema.user import User

    BigInt = int  # mypy cannot use a Strawberry scalar as a type; at run time it is one
else:
    from schema.scalars import BigInt

RANGE_NOTE = (
    " `from`/`to` cover whole UTC days: from `from`'s day through the day of the last "
    "instant before `to`. `to` defaults to now, `from` to 30 days ending with that day; "
    "`from` must be before `to` and at most 366 days before it."
)


def _cost(root: Any) -> int:
    return cast(int, root.sums.cost_micros)


def _count(root: Any) -> int:
    return cast(int, root.sums.count)


def _usage(root: Any) -> UsageTotals:
    return cast(UsageTotals, root.sums)


@strawberry.type(description="Token totals. Input is uncached input; output includes reasoning.")
class UsageTotals:
    input_tokens: BigInt
    output_tokens: BigInt
    reasoning_tokens: BigInt = strawberry.field(description="Part of outputTokens.")
    cache_read_tokens: BigInt
    cache_write_tokens: BigInt


@strawberry.type(description="Spend on one model config over the summary's days.")
class ModelCost:
    @strawberry.field(
        description="The config, if it still exists and the viewer may see it; null for "
        "calls made without one (e.g. an unknown gateway model)."
    )
    async def model_config(self, root: costs.ModelCost) -> ModelConfig | None:
        return cast(ModelConfig | None, await root.model_config())

    model: str = strawberry.field(description="The model's name on its latest day.")
    provider: str
    cost_micros: BigInt = strawberry.field(resolver=_cost)
    count: int = strawberry.field(resolver=_count, description="Charged model calls.")
    usage: UsageTotals = strawberry.field(resolver=_usage)


@strawberry.type(description="Spend of a chat together with its sub-agents.")
class ChatCost:
    @strawberry.field(
        description="The chat; null when it was deleted or is not the viewer's (an admin "
        "reading another user's costs sees the title only)."
    )
    async def chat(
        self, root: ChatCostRow, info: Info
    ) -> Annotated[Chat, strawberry.lazy("schema.chat")] | None:
        return cast("Chat | None", await costs.chat_of(info.context, root))

    @strawberry.field(
        description='The chat\'s title, "Deleted chat", or "AI gateway" for chat-less requests.'
    )
    def title(self, root: ChatCostRow) -> str:
        return costs.chat_title(root)

    cost_micros: BigInt = strawberry.field(resolver=_cost)
    count: int = strawberry.field(resolver=_count, description="Charged model calls.")
    usage: UsageTotals = strawberry.field(resolver=_usage)


@strawberry.type(description="Spend on one UTC day.")
class DailyCost:
    day: date
    cost_micros: BigInt


@strawberry.type(description="One user's spend over the range.")
class UserCost:
    @strawberry.field
    async def user(self, root: Any, info: Info) -> Annotated[User, strawberry.lazy("schema.user")]:
        return cast("User", await costs.cost_user(info.context, root))

    cost_micros: BigInt = strawberry.field(resolver=_cost)
    count: int = strawberry.field(resolver=_count, description="Charged model calls.")
    chat_count: int = strawberry.field(
        description="Root chats charged in the range (priced or not), sub-agents rolled in."
    )
    usage: UsageTotals = strawberry.field(resolver=_usage)


async def _totals(root: costs.CostSummary) -> UsageSums:
    return await root.totals()


@strawberry.type(
    description="A user's spend over whole UTC days, read from day rollups. Counts are "
    "charged model calls (assistant messages, titles, compaction, sub-agents)."
)
class CostSummary:
    @strawberry.field(name="from", description="The first covered day's midnight (UTC).")
    def from_(self, root: costs.CostSummary) -> datetime:
        return root.days.start_at

    @strawberry.field(description="The midnight after the last covered day (UTC, exclusive).")
    def to(self, root: costs.CostSummary) -> datetime:
        return root.days.end_at

    @strawberry.field
    async def total_cost_micros(self, root: costs.CostSummary) -> BigInt:
        return (await _totals(root)).cost_micros

    @strawberry.field(description="Charged calls of priced models.")
    async def priced_count(self, root: costs.CostSummary) -> int:
        return (await _totals(root)).priced_count

    @strawberry.field(
        description="Charged calls of models without prices: their tokens count, their "
        "cost is unknown (not zero)."
    )
    async def unpriced_count(self, root: costs.CostSummary) -> int:
        return (await _totals(root)).unpriced_count

    @strawberry.field
    async def usage(self, root: costs.CostSummary) -> UsageTotals:
        return cast(UsageTotals, await _totals(root))

    @strawberry.field(description="Per model config, most expensive first.")
    async def by_model(self, root: costs.CostSummary) -> list[ModelCost]:
        return cast(list[ModelCost], await root.by_model())

    @strawberry.field(
        description="Root chats (sub-agents rolled in), most expensive first; deleted "
        "chats keep their spend. 50 by default, at most 200."
    )
    async def by_chat(
        self, root: costs.CostSummary, first: int | None = None, after: str | None = None
    ) -> Connection[ChatCost]:
        page = await root.by_chat(PageArgs(first=first, after=after))
        return cast(Connection[ChatCost], connection_of(page))

    @strawberry.field(description="Every covered day in order, zero where nothing was spent.")
    async def by_day(self, root: costs.CostSummary) -> list[DailyCost]:
        return cast(list[DailyCost], await root.by_day())

    @strawberry.field(description="The summarised user's spend limit now (not over the range).")
    async def usage_limit(
        self, root: costs.CostSummary
    ) -> Annotated[UsageLimitStatus, strawberry.lazy("schema.usage_limit")] | None:
        return cast("UsageLimitStatus", await root.usage_limit())


FromArg = Annotated[datetime | None, strawberry.argument(name="from")]


async def _viewer_cost(
    info: Info, from_: FromArg = None, to: datetime | None = None
) -> CostSummary:
    summary = await costs.cost_summary(info.context, from_, to)
    return cast(CostSummary, summary)


async def _chat_cost(root: ChatRow, info: Info) -> ChatCost:
    return cast(ChatCost, await costs.chat_cost(info.context, root))


def viewer_cost_field() -> Any:
    """``Viewer.cost``: the viewer's own summary."""
    return strawberry.field(
        resolver=_viewer_cost, description="Your spend over whole UTC days." + RANGE_NOTE
    )


def chat_cost_field() -> Any:
    """``Chat.cost``: all-time spend of the chat and its sub-agents."""
    return strawberry.field(
        resolver=_chat_cost,
        description="All-time spend of this chat and its sub-agents (for a sub-agent: "
        "itself and its own sub-agents).",
    )


@strawberry.type
class CostQueries:
    @strawberry.field(
        description="A user's spend: your own by default; another user's (userId) needs "
        "VIEW_ALL_COSTS." + RANGE_NOTE
    )
    async def cost_summary(
        self,
        info: Info,
        from_: FromArg = None,
        to: datetime | None = None,
        user_id: strawberry.ID | None = None,
    ) -> CostSummary:
        summary = await costs.cost_summary(info.context, from_, to, user_id)
        return cast(CostSummary, summary)

    @strawberry.field(
        description="Every user charged in the range, biggest spender first (then by id). "
        "Needs VIEW_ALL_COSTS. 50 by default, at most 200." + RANGE_NOTE
    )
    async def user_costs(
        self,
        info: Info,
        from_: FromArg = None,
        to: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[UserCost]:
        page = await costs.user_costs(info.context, from_, to, PageArgs(first=first, after=after))
        return cast(Connection[UserCost], connection_of(page))
