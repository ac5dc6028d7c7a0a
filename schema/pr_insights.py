"""Pull-request insights as the API shows them (VIEW_INSIGHTS): pull requests
opened, merged and closed in a window against the window before it, per UTC day,
per model, what their chats cost, and the newest ones.

The diff-status rows keep no provider timestamps, so "opened" is when the chat
began and "merged"/"closed" when the provider refresh reported that state: see
``db.pr_insights``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from db.pr_insights import PullRequestRow
from resolvers import pr_insights
from resolvers.pr_insights import RECENT_DEFAULT, RECENT_MAX, Insights
from schema.info import Info

if TYPE_CHECKING:
    from schema.chat import Chat

    BigInt = int  # mypy cannot use a Strawberry scalar as a type; at run time it is one
else:
    from schema.scalars import BigInt

WHEN = (
    " Opened = when its chat began; merged/closed = the provider refresh that reported "
    "that state (no provider timestamps are stored)."
)


@strawberry.type(description="Pull requests opened and merged on one UTC day.")
class PullRequestDay:
    day: date
    opened: int
    merged: int


@strawberry.type(description="Pull requests of the chats on one model (the chat's model config).")
class PullRequestModel:
    model: str = strawberry.field(description='The model\'s name; "unknown" without a config.')
    opened: int
    merged: int
    cost_micros: BigInt = strawberry.field(
        description="The whole spend of the root chats behind those opened in the window."
    )


def _opened_at(root: PullRequestRow) -> datetime:
    return root.created_at


@strawberry.type(description="A chat's pull request as the git provider last reported it.")
class PullRequest:
    url: str
    number: int | None
    title: str | None
    state: str | None = strawberry.field(description="open, draft, merged or closed.")
    author_login: str | None
    created_at: datetime | None = strawberry.field(
        resolver=_opened_at, description="When it counts as opened: its chat's creation."
    )

    @strawberry.field(description="The chat behind it; null unless it is yours.")
    async def chat(
        self, root: PullRequestRow, info: Info
    ) -> Annotated[Chat, strawberry.lazy("schema.chat")] | None:
        return cast("Chat | None", await pr_insights.pull_request_chat(info.context, root))


def _window_from(root: Insights) -> datetime:
    return root.window.start


def _window_to(root: Insights) -> datetime:
    return root.window.end


@strawberry.type(
    description="Every user's pull requests in [from, to) against the window of the same "
    "length before it." + WHEN
)
class PullRequestInsights:
    from_: datetime = strawberry.field(name="from", resolver=_window_from)
    to: datetime = strawberry.field(resolver=_window_to)

    @strawberry.field(description="Opened in the window (whatever their state now).")
    def opened(self, root: Insights) -> int:
        return root.summary.opened

    @strawberry.field(description="Merged in the window.")
    def merged(self, root: Insights) -> int:
        return root.summary.merged

    @strawberry.field(description="Closed without merging in the window.")
    def closed(self, root: Insights) -> int:
        return root.summary.closed

    @strawberry.field(description="Opened in the previous window.")
    def previous_opened(self, root: Insights) -> int:
        return root.summary.previous_opened

    @strawberry.field(description="Merged in the previous window.")
    def previous_merged(self, root: Insights) -> int:
        return root.summary.previous_merged

    @strawberry.field(
        description="The whole spend of the root chats behind the pull requests opened in "
        "the window, each root chat once."
    )
    def cost_micros(self, root: Insights) -> BigInt:
        return root.summary.cost_micros

    @strawberry.field(description="Every UTC day the window touches, zero where nothing happened.")
    async def by_day(self, root: Insights) -> list[PullRequestDay]:
        return cast(list[PullRequestDay], await pr_insights.by_day(root))

    @strawberry.field(description="Per model, most opened first.")
    async def by_model(self, root: Insights) -> list[PullRequestModel]:
        return cast(list[PullRequestModel], await pr_insights.by_model(root))

    @strawberry.field(
        description=f"Opened in the window, newest first; {RECENT_DEFAULT} by default, "
        f"at most {RECENT_MAX}."
    )
    async def recent(self, root: Insights, first: int | None = None) -> list[PullRequest]:
        return cast(list[PullRequest], await pr_insights.recent(root, first))


@strawberry.type
class PullRequestInsightsQueries:
    @strawberry.field(
        description="Pull-request insights over every user's chats; needs VIEW_INSIGHTS. "
        "`to` defaults to now, `from` to the start of the 30 UTC days ending with `to`'s; "
        "`from` must be before `to` and at most 366 days before it."
    )
    async def pull_request_insights(
        self,
        info: Info,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> PullRequestInsights:
        found = await pr_insights.pull_request_insights(info.context, from_, to)
        return cast(PullRequestInsights, found)
