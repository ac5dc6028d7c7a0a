"""Cost summaries read from the day rollups, never from ``chat_messages``.

``db.spend.settle`` adds every charge to ``cost_user_days``, ``cost_model_days``
and ``cost_chat_days`` in the transaction that records it, so a summary costs
O(days in the range), not O(messages): a year is at most 367 rows a user.

Day granularity: a range ``[start, end)`` covers every UTC day it touches —
from ``start``'s day through the day of the last instant before ``end`` (so an
``end`` at midnight stops at the day before it, an ``end`` at noon includes its
own day). Partial days count whole: the rollups know no finer time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from db.keyset import Page, SortKey, decode_cursor, encode_cursor
from db.raw_sql import fetch, fetchrow
from db.vocabulary import NIL_UUID

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayRange:
    """UTC days ``first <= day < end``."""

    first: date
    end: date

    @classmethod
    def covering(cls, start: datetime, end: datetime) -> DayRange:
        """The days ``[start, end)`` touches (see the module's rule)."""
        first = start.astimezone(UTC).date()
        last_instant = end.astimezone(UTC) - timedelta(microseconds=1)
        return cls(first, max(last_instant.date() + ONE_DAY, first))

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.end - self.first).days)]


@dataclass(frozen=True, slots=True)
class UsageSums:
    """What the rollups add up: spend, message counts and token totals."""

    cost_micros: int = 0
    priced_count: int = 0
    unpriced_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def count(self) -> int:
        return self.priced_count + self.unpriced_count


@dataclass(frozen=True, slots=True)
class ModelCostRow:
    """Spend on one model config; ``model_config_id`` None when unknown. Provider
    and model are the names of its latest day (a config may have been renamed)."""

    model_config_id: uuid.UUID | None
    provider: str
    model: str
    sums: UsageSums


@dataclass(frozen=True, slots=True)
class ChatCostRow:
    """Spend of a chat and its sub-agents. ``title`` and ``owner_id`` are None
    when the chat was deleted (the ledger keeps its spend)."""

    chat_id: uuid.UUID
    title: str | None
    owner_id: uuid.UUID | None
    sums: UsageSums


@dataclass(frozen=True, slots=True)
class DayCostRow:
    day: date
    cost_micros: int


@dataclass(frozen=True, slots=True)
class UserCostRow:
    """One user's spend; ``chat_count`` = distinct root chats charged in the range."""

    user_id: uuid.UUID
    chat_count: int
    sums: UsageSums


# Sums of a rollup table's columns, as bigints (sum(int) is bigint, sum(bigint) numeric).
_SUMS = """coalesce(sum(cost_micros), 0)::bigint AS cost_micros,
  coalesce(sum(priced_count), 0)::bigint AS priced_count,
  coalesce(sum(unpriced_count), 0)::bigint AS unpriced_count,
  coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
  coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
  coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens,
  coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read_tokens,
  coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens"""
_IN_RANGE = "user_id = $1 AND day >= $2 AND day < $3"

_TOTALS = f"SELECT {_SUMS} FROM cost_user_days WHERE {_IN_RANGE}"

# Provider and model names from each config's latest day (one index lookup each).
_BY_MODEL = f"""
WITH g AS (
  SELECT model_config_id, max(day) AS last_day, {_SUMS}
  FROM cost_model_days WHERE {_IN_RANGE}
  GROUP BY model_config_id
)
SELECT g.*, l.provider, l.model FROM g
JOIN cost_model_days l
  ON l.user_id = $1 AND l.day = g.last_day AND l.model_config_id = g.model_config_id
ORDER BY g.cost_micros DESC, l.model, g.model_config_id
"""

_BY_DAY = f"SELECT day, cost_micros FROM cost_user_days WHERE {_IN_RANGE}"

# Root chats, most expensive first; $4/$5 the cursor (NULL: the first page). Only
# the cost is summed for every root chat (to rank them); the other sums are taken
# for the page's rows alone, through the (root_chat_id, day) index.
_BY_CHAT = f"""
WITH t AS (
  SELECT root_chat_id, sum(cost_micros)::bigint AS cost_micros
  FROM cost_chat_days WHERE {_IN_RANGE} GROUP BY root_chat_id
), page AS (
  SELECT * FROM t
  WHERE $4::bigint IS NULL OR t.cost_micros < $4::bigint
    OR (t.cost_micros = $4::bigint AND t.root_chat_id > $5::uuid)
  ORDER BY t.cost_micros DESC, t.root_chat_id
  LIMIT $6
)
SELECT page.root_chat_id, s.*, c.title, c.owner_id
FROM page
CROSS JOIN LATERAL (
  SELECT {_SUMS} FROM cost_chat_days d
  WHERE d.root_chat_id = page.root_chat_id AND d.day >= $2 AND d.day < $3 AND d.user_id = $1
) s
LEFT JOIN chats c ON c.id = page.root_chat_id
ORDER BY page.cost_micros DESC, page.root_chat_id
"""

# Users, biggest spender first; $3/$4 the cursor; chat counts for the page only.
_USERS = f"""
WITH t AS (
  SELECT user_id, {_SUMS} FROM cost_user_days WHERE day >= $1 AND day < $2 GROUP BY user_id
), page AS (
  SELECT * FROM t
  WHERE $3::bigint IS NULL OR t.cost_micros < $3::bigint
    OR (t.cost_micros = $3::bigint AND t.user_id > $4::uuid)
  ORDER BY t.cost_micros DESC, t.user_id
  LIMIT $5
)
SELECT page.*, (SELECT count(DISTINCT d.root_chat_id) FROM cost_chat_days d
    WHERE d.user_id = page.user_id AND d.day >= $1 AND d.day < $2) AS chat_count
FROM page ORDER BY page.cost_micros DESC, page.user_id
"""

# All-time spend of chats with their sub-agents: a root by ``root_chat_id`` (which
# keeps deleted sub-agents' spend), a sub-agent by walking its own subtree.
_CHATS_ALL_TIME = f"""
WITH RECURSIVE tree(top, id) AS (
  SELECT k.id, k.id FROM unnest($2::uuid[]) AS k(id)
  UNION ALL
  SELECT tree.top, c.id FROM chats c JOIN tree ON c.parent_id = tree.id
), charged AS (
  SELECT d.root_chat_id AS key, d.* FROM cost_chat_days d WHERE d.root_chat_id = ANY($1::uuid[])
  UNION ALL
  SELECT tree.top, d.* FROM tree JOIN cost_chat_days d ON d.chat_id = tree.id
)
SELECT key, {_SUMS} FROM charged GROUP BY key
"""

CHAT_ORDER = (
    SortKey("cost_micros", descending=True, kind="bigint"),
    SortKey("chat_id", kind="uuid"),
)
USER_ORDER = (
    SortKey("cost_micros", descending=True, kind="bigint"),
    SortKey("user_id", kind="uuid"),
)


def _sums(row: Any) -> UsageSums:
    return UsageSums(
        cost_micros=int(row["cost_micros"]),
        priced_count=int(row["priced_count"]),
        unpriced_count=int(row["unpriced_count"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        reasoning_tokens=int(row["reasoning_tokens"]),
        cache_read_tokens=int(row["cache_read_tokens"]),
        cache_write_tokens=int(row["cache_write_tokens"]),
    )


async def totals(user_id: uuid.UUID, days: DayRange) -> UsageSums:
    return _sums(await fetchrow(_TOTALS, user_id, days.first, days.end))


async def by_model(user_id: uuid.UUID, days: DayRange) -> list[ModelCostRow]:
    """Most expensive first."""
    rows = await fetch(_BY_MODEL, user_id, days.first, days.end)
    return [
        ModelCostRow(
            model_config_id=None if r["model_config_id"] == NIL_UUID else r["model_config_id"],
            provider=r["provider"],
            model=r["model"],
            sums=_sums(r),
        )
        for r in rows
    ]


async def by_day(user_id: uuid.UUID, days: DayRange) -> list[DayCostRow]:
    """Every day of the range in order, zero where nothing was charged."""
    rows = await fetch(_BY_DAY, user_id, days.first, days.end)
    spent = {r["day"]: int(r["cost_micros"]) for r in rows}
    return [DayCostRow(day, spent.get(day, 0)) for day in days.days()]


def _seek(after: str | None, order: tuple[SortKey, ...]) -> tuple[int | None, uuid.UUID | None]:
    if after is None:
        return None, None
    cost, key = decode_cursor(after, order)
    return cost, key


async def by_chat(
    user_id: uuid.UUID, days: DayRange, *, first: int, after: str | None
) -> Page[ChatCostRow]:
    """Root chats (sub-agents rolled in), most expensive first, then by id.
    Raises ``InvalidCursor`` for a cursor this ordering did not produce."""
    cost, key = _seek(after, CHAT_ORDER)
    rows = await fetch(_BY_CHAT, user_id, days.first, days.end, cost, key, first + 1)
    items = [ChatCostRow(r["root_chat_id"], r["title"], r["owner_id"], _sums(r)) for r in rows]
    return _page(items[:first], len(items) > first, after, lambda i: (i.sums, i.chat_id))


async def user_costs(days: DayRange, *, first: int, after: str | None) -> Page[UserCostRow]:
    """Every user charged in the range, biggest spender first, then by id."""
    cost, key = _seek(after, USER_ORDER)
    rows = await fetch(_USERS, days.first, days.end, cost, key, first + 1)
    items = [UserCostRow(r["user_id"], int(r["chat_count"]), _sums(r)) for r in rows]
    return _page(items[:first], len(items) > first, after, lambda i: (i.sums, i.user_id))


def _page(items: list[Any], more: bool, after: str | None, key: Any) -> Page[Any]:
    cursors = []
    for item in items:
        sums, ident = key(item)
        cursors.append(encode_cursor([sums.cost_micros, ident]))
    return Page(items, cursors, has_next_page=more, has_previous_page=after is not None)


async def chats_all_time(
    roots: list[uuid.UUID], sub_agents: list[uuid.UUID]
) -> dict[uuid.UUID, UsageSums]:
    """All-time spend of each chat with its sub-agents, in one statement; chats
    never charged are absent."""
    if not roots and not sub_agents:
        return {}
    rows = await fetch(_CHATS_ALL_TIME, roots, sub_agents)
    return {r["key"]: _sums(r) for r in rows}
