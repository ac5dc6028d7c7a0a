"""Pull-request insights: what the chats' pull requests did in a window, read
from the diff-status rows the provider refresh keeps, joined to the chats, their
model configs and the chat cost rollups.

``chat_diff_statuses`` holds a pull request's *current* state as the provider
last reported it, not its history, and no provider timestamps. So:

- a pull request is a row with a ``pull_request_state`` (open, draft, merged,
  closed); a row without one is a branch with no pull request;
- **opened** at the chat's creation: stable, and a pull request only exists after
  its chat began (an early bound: the real opening is later in the chat);
- **merged** / **closed** at ``refreshed_at`` of a row in that state (the refresh
  that reported it, ``updated_at`` if never refreshed): a late bound, within the
  refresh interval, that moves if the row is refreshed again later;
- a pull request merged or closed and then reopened counts as open only.

The cost of the pull requests opened in a window is the whole spend (any day) of
their root chats, from ``cost_chat_days``, each root counted once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from db.raw_sql import fetch, fetchrow

# Every pull request with the moments it counts at (see the module docstring).
_PRS = """
WITH prs AS (
  SELECT d.chat_id, c.root_id, c.owner_id, c.created_at AS opened_at,
    CASE WHEN d.pull_request_state = 'merged'
      THEN coalesce(d.refreshed_at, d.updated_at) END AS merged_at,
    CASE WHEN d.pull_request_state = 'closed'
      THEN coalesce(d.refreshed_at, d.updated_at) END AS closed_at,
    coalesce(mc.model, 'unknown') AS model, d.url, d.pr_number, d.pull_request_title,
    d.pull_request_state, d.author_login
  FROM chat_diff_statuses d JOIN chats c ON c.id = d.chat_id
  LEFT JOIN model_configs mc ON mc.id = c.model_config_id
  WHERE d.pull_request_state IS NOT NULL
)"""
_IN = "{0} >= $1::timestamptz AND {0} < $2::timestamptz"
_SUMMARY = f"""{_PRS}
SELECT count(*) FILTER (WHERE {_IN.format("opened_at")}) AS opened,
  count(*) FILTER (WHERE {_IN.format("merged_at")}) AS merged,
  count(*) FILTER (WHERE {_IN.format("closed_at")}) AS closed,
  count(*) FILTER (WHERE opened_at >= $3::timestamptz AND opened_at < $1) AS previous_opened,
  count(*) FILTER (WHERE merged_at >= $3::timestamptz AND merged_at < $1) AS previous_merged,
  (SELECT coalesce(sum(k.cost_micros), 0) FROM cost_chat_days k WHERE k.root_chat_id IN
    (SELECT root_id FROM prs WHERE {_IN.format("opened_at")})) AS cost_micros
FROM prs
"""
_BY_DAY = f"""{_PRS}
SELECT day, sum(opened)::int AS opened, sum(merged)::int AS merged FROM (
  SELECT (opened_at AT TIME ZONE 'UTC')::date AS day, 1 AS opened, 0 AS merged
  FROM prs WHERE {_IN.format("opened_at")}
  UNION ALL
  SELECT (merged_at AT TIME ZONE 'UTC')::date, 0, 1 FROM prs WHERE {_IN.format("merged_at")}
) events GROUP BY day
"""
_BY_MODEL = f"""{_PRS}, counts AS (
  SELECT model, count(*) FILTER (WHERE {_IN.format("opened_at")}) AS opened,
    count(*) FILTER (WHERE {_IN.format("merged_at")}) AS merged
  FROM prs GROUP BY model
), roots AS (
  SELECT DISTINCT model, root_id FROM prs WHERE {_IN.format("opened_at")}
), costs AS (
  SELECT r.model, sum(k.cost_micros) AS cost_micros
  FROM roots r JOIN cost_chat_days k ON k.root_chat_id = r.root_id GROUP BY r.model
)
SELECT c.model, c.opened, c.merged, coalesce(x.cost_micros, 0) AS cost_micros
FROM counts c LEFT JOIN costs x ON x.model = c.model
WHERE c.opened > 0 OR c.merged > 0
ORDER BY c.opened DESC, c.merged DESC, c.model
"""
_RECENT = f"""{_PRS}
SELECT * FROM prs WHERE {_IN.format("opened_at")}
ORDER BY opened_at DESC, chat_id DESC LIMIT $3
"""


@dataclass(frozen=True)
class Window:
    """``[start, end)``; the previous window is as long and ends at ``start``."""

    start: datetime
    end: datetime

    @property
    def previous_start(self) -> datetime:
        return self.start - (self.end - self.start)

    def days(self) -> list[date]:
        """Every UTC day the window touches, in order."""
        first = self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class Summary:
    opened: int
    merged: int
    closed: int
    previous_opened: int
    previous_merged: int
    cost_micros: int


@dataclass(frozen=True)
class DayCount:
    day: date
    opened: int
    merged: int


@dataclass(frozen=True)
class ModelCount:
    model: str
    opened: int
    merged: int
    cost_micros: int


@dataclass(frozen=True)
class PullRequestRow:
    chat_id: uuid.UUID
    owner_id: uuid.UUID
    url: str
    number: int | None
    title: str | None
    state: str
    author_login: str | None
    created_at: datetime


async def summary(window: Window) -> Summary:
    row = await fetchrow(_SUMMARY, window.start, window.end, window.previous_start)
    return Summary(
        opened=row["opened"],
        merged=row["merged"],
        closed=row["closed"],
        previous_opened=row["previous_opened"],
        previous_merged=row["previous_merged"],
        cost_micros=int(row["cost_micros"]),
    )


async def by_day(window: Window) -> list[DayCount]:
    """Every UTC day of the window, zero where nothing happened."""
    counted = {r["day"]: r for r in await fetch(_BY_DAY, window.start, window.end)}
    return [
        DayCount(day, counted[day]["opened"], counted[day]["merged"])
        if day in counted
        else DayCount(day, 0, 0)
        for day in window.days()
    ]


async def by_model(window: Window) -> list[ModelCount]:
    """Models with a pull request opened or merged in the window, most opened first."""
    rows = await fetch(_BY_MODEL, window.start, window.end)
    return [ModelCount(r["model"], r["opened"], r["merged"], int(r["cost_micros"])) for r in rows]


async def recent(window: Window, limit: int) -> list[PullRequestRow]:
    """Pull requests opened in the window, newest first."""
    rows = await fetch(_RECENT, window.start, window.end, limit)
    return [
        PullRequestRow(
            chat_id=r["chat_id"],
            owner_id=r["owner_id"],
            url=r["url"] or "",
            number=r["pr_number"],
            title=r["pull_request_title"],
            state=r["pull_request_state"],
            author_login=r["author_login"],
            created_at=r["opened_at"],
        )
        for r in rows
    ]
