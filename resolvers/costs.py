"""Cost queries: whose spend a viewer may see, over which UTC days, read from the
day rollups (``db.cost_rollups``), never from messages.

A summary is lazy: each of its parts is one statement run only when asked for,
and the totals (three fields read them) run once however many fields ask.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from db import cost_rollups
from db.cost_rollups import (
    ChatCostRow,
    DayCostRow,
    DayRange,
    ModelCostRow,
    UsageSums,
    UserCostRow,
)
from db.keyset import InvalidCursor, Page
from db.models import Chat, ModelConfig, User
from db.usage_limits import LimitStatus, limit_status
from db.vocabulary import (
    COST_RANGE_DEFAULT_DAYS,
    COST_RANGE_MAX_DAYS,
    DEFAULT_PAGE_SIZE,
    NIL_UUID,
    Permission,
)
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import bad_input, not_found
from resolvers.loaders import Loaders, SafeLoader
from resolvers.model_configs import model_configs_by_ids
from resolvers.pagination import PageArgs
from resolvers.permissions import require_permission, require_viewer

T = TypeVar("T")

# What a cost row shows for a chat that no longer exists (the ledger keeps its spend).
DELETED_CHAT_TITLE = "Deleted chat"
# What it shows for spend without a chat: AI gateway requests (the nil chat id).
GATEWAY_TITLE = "AI gateway"
_TICK = timedelta(microseconds=1)


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise bad_input(name, "must carry a time zone")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise bad_input(name, "out of range") from None


def cost_range(
    start: datetime | None, end: datetime | None, now: datetime | None = None
) -> DayRange:
    """The UTC days a cost query covers (the rule: ``DayRange.covering``).

    ``to`` defaults to now; ``from`` to the start of the day
    ``COST_RANGE_DEFAULT_DAYS - 1`` days before ``to``'s last day, so the default
    is the last 30 UTC days, today included. ``from`` must be before ``to`` and
    at most ``COST_RANGE_MAX_DAYS`` days before it; errors name the argument.
    """
    given_end = end is not None
    end = _utc(end, "to") if end is not None else (now or datetime.now(UTC))
    try:
        last_day = (end - _TICK).date()
        if start is None:
            first_day = last_day - timedelta(days=COST_RANGE_DEFAULT_DAYS - 1)
            start = datetime.combine(first_day, time(), UTC)
        else:
            start = _utc(start, "from")
        days = DayRange.covering(start, end)
    except OverflowError:
        raise bad_input("to", "out of range") from None
    if start >= end:
        if given_end:
            raise bad_input("to", "must be later than from")
        raise bad_input("from", "must be in the past (to defaults to now)")
    if end - start > timedelta(days=COST_RANGE_MAX_DAYS):
        raise bad_input("from", f"at most {COST_RANGE_MAX_DAYS} days before to")
    return days


class Once(Generic[T]):
    """An awaitable run at most once, however many resolvers await it at once."""

    def __init__(self, make: Callable[[], Awaitable[T]]) -> None:
        self._make = make
        self._task: asyncio.Future[T] | None = None

    async def get(self) -> T:
        if self._task is None:
            self._task = asyncio.ensure_future(self._make())
        return await asyncio.shield(self._task)


@dataclass
class ModelCost:
    """A by-model row and the (shared, loaded once) configs of the whole list."""

    row: ModelCostRow
    configs: Once[dict[uuid.UUID, ModelConfig]]

    @property
    def model(self) -> str:
        return self.row.model

    @property
    def provider(self) -> str:
        return self.row.provider

    @property
    def sums(self) -> UsageSums:
        return self.row.sums

    async def model_config(self) -> ModelConfig | None:
        """The config if it still exists and the viewer may see it."""
        key = self.row.model_config_id
        return None if key is None else (await self.configs.get()).get(key)


@dataclass
class CostSummary:
    """One user's spend over ``days``; each part is read when first asked for."""

    ctx: RequestContext
    user_id: uuid.UUID
    days: DayRange
    _totals: Once[UsageSums] | None = field(default=None, repr=False)

    async def totals(self) -> UsageSums:
        if self._totals is None:
            self._totals = Once(lambda: cost_rollups.totals(self.user_id, self.days))
        return await self._totals.get()

    async def by_model(self) -> list[ModelCost]:
        rows = await cost_rollups.by_model(self.user_id, self.days)
        keys = [r.model_config_id for r in rows if r.model_config_id is not None]

        async def configs() -> dict[uuid.UUID, ModelConfig]:
            return await model_configs_by_ids(self.ctx, keys) if keys else {}

        shared = Once(configs)
        return [ModelCost(row, shared) for row in rows]

    async def by_chat(self, args: PageArgs) -> Page[ChatCostRow]:
        checked = args.checked()
        size = DEFAULT_PAGE_SIZE if checked.first is None else checked.first
        try:
            return await cost_rollups.by_chat(
                self.user_id, self.days, first=size, after=checked.after
            )
        except InvalidCursor:
            raise bad_input("after", "not a valid cursor") from None

    async def by_day(self) -> list[DayCostRow]:
        return await cost_rollups.by_day(self.user_id, self.days)

    async def usage_limit(self) -> LimitStatus:
        return await limit_status(self.user_id)


async def cost_summary(
    ctx: RequestContext,
    start: datetime | None,
    end: datetime | None,
    user_id: str | None = None,
) -> CostSummary:
    """The viewer's own spend, or (with VIEW_ALL_COSTS) another user's: FORBIDDEN
    without it, NOT_FOUND for a user that does not exist."""
    viewer = require_viewer(ctx)
    days = cost_range(start, end)
    target = viewer.id
    if user_id is not None:
        target = global_id.decode_uuid(user_id, "User", field="userId")
        if target != viewer.id:
            require_permission(ctx, Permission.VIEW_ALL_COSTS)
            if not await User.exists(id=target):
                raise not_found("user")
    return CostSummary(ctx, target, days)


async def user_costs(
    ctx: RequestContext, start: datetime | None, end: datetime | None, args: PageArgs
) -> Page[UserCostRow]:
    """Every user charged in the range, biggest spender first (VIEW_ALL_COSTS)."""
    require_permission(ctx, Permission.VIEW_ALL_COSTS)
    days = cost_range(start, end)
    checked = PageArgs(first=args.first, after=args.after).checked()
    size = DEFAULT_PAGE_SIZE if checked.first is None else checked.first
    try:
        return await cost_rollups.user_costs(days, first=size, after=checked.after)
    except InvalidCursor:
        raise bad_input("after", "not a valid cursor") from None


async def cost_user(ctx: RequestContext, row: UserCostRow) -> User:
    return await ctx.loaders.users.load(row.user_id)  # type: ignore[no-any-return]


async def chat_of(ctx: RequestContext, row: ChatCostRow) -> Chat | None:
    """The chat behind a cost row, when it exists and is the viewer's (chats are
    visible to their owner only; an admin reading someone's costs sees titles)."""
    viewer = ctx.viewer
    if viewer is None or row.owner_id is None or row.owner_id != viewer.id:
        return None
    return await ctx.loaders.chats.load(row.chat_id)  # type: ignore[no-any-return]


def chat_title(row: ChatCostRow) -> str:
    if row.chat_id == NIL_UUID:
        return GATEWAY_TITLE
    return DELETED_CHAT_TITLE if row.title is None else row.title


# Per operation: Chat.cost of a whole chat list is one statement.
_chat_cost_loaders: WeakKeyDictionary[Loaders, SafeLoader] = WeakKeyDictionary()


async def _chat_costs(keys: list[tuple[uuid.UUID, bool]]) -> list[UsageSums]:
    roots = [chat_id for chat_id, is_root in keys if is_root]
    sub_agents = [chat_id for chat_id, is_root in keys if not is_root]
    found = await cost_rollups.chats_all_time(roots, sub_agents)
    return [found.get(chat_id, UsageSums()) for chat_id, _ in keys]


async def chat_cost(ctx: RequestContext, chat: Chat) -> ChatCostRow:
    """All-time spend of a chat with its sub-agents: a root's whole family, a
    sub-agent's own subtree. Another user's chat is NOT_FOUND."""
    viewer = require_viewer(ctx)
    owner: Any = chat.owner_id  # type: ignore[attr-defined]
    if owner != viewer.id:
        raise not_found("chat")
    loaders = ctx.loaders
    loader = _chat_cost_loaders.get(loaders)
    if loader is None:
        loader = _chat_cost_loaders[loaders] = SafeLoader(_chat_costs)
    loaders.chats.prime(chat.id, chat)
    sums: UsageSums = await loader.load((chat.id, chat.root_id == chat.id))
    return ChatCostRow(chat.id, chat.title, owner, sums)
