"""Pull-request insights (VIEW_INSIGHTS): every user's pull requests in a window
against the window before it; what counts when is in ``db.pr_insights``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from db import pr_insights
from db.models import Chat
from db.pr_insights import DayCount, ModelCount, PullRequestRow, Summary, Window
from db.vocabulary import COST_RANGE_DEFAULT_DAYS, COST_RANGE_MAX_DAYS, Permission
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.permissions import require_permission

RECENT_DEFAULT = 10
RECENT_MAX = 100


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise bad_input(name, "must carry a time zone")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise bad_input(name, "out of range") from None


def insight_window(
    start: datetime | None, end: datetime | None, now: datetime | None = None
) -> Window:
    """``[from, to)`` exactly as given. ``to`` defaults to now; ``from`` to the
    midnight (UTC) that makes the last ``COST_RANGE_DEFAULT_DAYS`` UTC days, as
    cost summaries do. ``from`` must be before ``to``, at most
    ``COST_RANGE_MAX_DAYS`` days before it; errors name the argument."""
    given_end = end is not None
    end = _utc(end, "to") if end is not None else (now or datetime.now(UTC))
    if start is None:
        try:
            last_day = (end - timedelta(microseconds=1)).date()
            first_day = last_day - timedelta(days=COST_RANGE_DEFAULT_DAYS - 1)
        except OverflowError:
            raise bad_input("to", "out of range") from None
        start = datetime.combine(first_day, time(), UTC)
    else:
        start = _utc(start, "from")
    if start >= end:
        if given_end:
            raise bad_input("to", "must be later than from")
        raise bad_input("from", "must be in the past (to defaults to now)")
    if end - start > timedelta(days=COST_RANGE_MAX_DAYS):
        raise bad_input("from", f"at most {COST_RANGE_MAX_DAYS} days before to")
    try:
        _ = start - (end - start)  # the previous window must exist too
    except OverflowError:
        raise bad_input("from", "out of range") from None
    return Window(start, end)


@dataclass(frozen=True)
class Insights:
    """The figures every query needs, read at once; the lists are read when asked."""

    window: Window
    summary: Summary


async def pull_request_insights(
    ctx: RequestContext, start: datetime | None, end: datetime | None
) -> Insights:
    require_permission(ctx, Permission.VIEW_INSIGHTS)
    window = insight_window(start, end)
    return Insights(window, await pr_insights.summary(window))


async def by_day(insights: Insights) -> list[DayCount]:
    return await pr_insights.by_day(insights.window)


async def by_model(insights: Insights) -> list[ModelCount]:
    return await pr_insights.by_model(insights.window)


async def recent(insights: Insights, first: int | None) -> list[PullRequestRow]:
    limit = RECENT_DEFAULT if first is None else first
    if not 0 <= limit <= RECENT_MAX:
        raise bad_input("first", f"between 0 and {RECENT_MAX}", maximum=RECENT_MAX)
    if limit == 0:
        return []
    return await pr_insights.recent(insights.window, limit)


async def pull_request_chat(ctx: RequestContext, row: PullRequestRow) -> Chat | None:
    """The chat behind it, when the viewer may see it: chats are their owner's only."""
    if ctx.viewer is None or row.owner_id != ctx.viewer.id:
        return None
    chat: Chat | None = await ctx.loaders.chats.load(row.chat_id)
    return chat
