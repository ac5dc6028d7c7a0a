"""The day rollups, read back: what spend.settle recorded adds up, over any range
of UTC days, to the charges themselves and to the messages they belong to."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from db import cost_rollups, raw_sql
from db.cost_rollups import DayRange, UsageSums
from db.costing import Usage
from db.keyset import InvalidCursor
from db.models import Chat
from tests.cost_history import (
    CHAT_SLOTS,
    ROOT_A,
    ROOT_B,
    SUB_A,
    SUB_B,
    SUB_SUB_A,
    Spent,
    all_time,
    expected,
    histories,
    models,
    new_family,
    ranges,
    record,
    subtree,
)

TABLE = models([uuid.uuid4(), uuid.uuid4(), uuid.uuid4()])


@pytest.fixture(scope="module", autouse=True)
def database(app: Starlette) -> None:
    """The app's lifespan opens the pool every read here uses."""


def test_a_range_covers_every_utc_day_it_touches() -> None:
    midnight = datetime(2026, 3, 1, tzinfo=UTC)
    noon = datetime(2026, 3, 2, 12, tzinfo=UTC)
    # ending at midnight stops at the day before; ending at noon includes that day
    assert DayRange.covering(datetime(2026, 2, 27, 18, tzinfo=UTC), midnight) == DayRange(
        date(2026, 2, 27), date(2026, 3, 1)
    )
    assert DayRange.covering(midnight, noon) == DayRange(date(2026, 3, 1), date(2026, 3, 3))
    assert DayRange.covering(midnight, noon).days() == [date(2026, 3, 1), date(2026, 3, 2)]


async def _pages(user_id: uuid.UUID, days: DayRange, size: int) -> list[cost_rollups.ChatCostRow]:
    rows: list[cost_rollups.ChatCostRow] = []
    after = None
    while True:
        page = await cost_rollups.by_chat(user_id, days, first=size, after=after)
        rows.extend(page.items)
        assert len(page.items) <= size
        if not page.has_next_page:
            return rows
        after = page.cursors[-1]


@settings(max_examples=30, deadline=None)
@given(history=histories(), span=ranges, page_size=st.integers(1, 3))
async def test_reads_equal_a_sum_over_the_charges(
    history: list[Spent], span: tuple[datetime, datetime], page_size: int
) -> None:
    family = await new_family()
    await record(family, history, TABLE)
    days = DayRange.covering(*span)
    want = expected(family, history, TABLE, days)
    user = family.user.id

    assert await cost_rollups.totals(user, days) == want.totals
    assert {m.model_config_id: m.sums for m in await cost_rollups.by_model(user, days)} == (
        want.by_model
    )
    chats = await _pages(user, days, page_size)
    assert {c.chat_id: c.sums for c in chats} == want.by_root
    assert len(chats) == len(want.by_root)
    order = [(-c.sums.cost_micros, c.chat_id) for c in chats]
    assert order == sorted(order), "most expensive first, then by id"
    assert all(c.title is not None and c.owner_id == user for c in chats)
    assert {d.day: d.cost_micros for d in await cost_rollups.by_day(user, days)} == want.by_day
    assert [d.day for d in await cost_rollups.by_day(user, days)] == days.days()

    ever = await cost_rollups.chats_all_time(
        [family.chats[ROOT_A], family.chats[ROOT_B]],
        [family.chats[SUB_A], family.chats[SUB_SUB_A], family.chats[SUB_B]],
    )
    for slot in (ROOT_A, ROOT_B, SUB_A, SUB_SUB_A, SUB_B):
        assert ever.get(family.chats[slot], UsageSums()) == all_time(
            family, history, TABLE, subtree(slot)
        )


_FROM_MESSAGES = """
SELECT {key}, (m.created_at AT TIME ZONE 'UTC')::date AS day,
  coalesce(sum(m.total_cost_micros), 0)::bigint AS cost_micros,
  count(m.total_cost_micros)::bigint AS priced_count,
  (count(*) - count(m.total_cost_micros))::bigint AS unpriced_count,
  sum(m.input_tokens)::bigint AS input_tokens, sum(m.output_tokens)::bigint AS output_tokens,
  sum(m.reasoning_tokens)::bigint AS reasoning_tokens,
  sum(m.cache_read_tokens)::bigint AS cache_read_tokens,
  sum(m.cache_write_tokens)::bigint AS cache_write_tokens
FROM chat_messages m JOIN chats c ON c.id = m.chat_id
WHERE c.owner_id = $1 AND m.role = 'assistant'
GROUP BY 1, 2
"""
_ROLLUP = """
SELECT {key}, day, cost_micros::bigint, priced_count::bigint, unpriced_count::bigint,
  input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens
FROM {table} WHERE user_id = $1
"""


async def _keyed(sql: str, user_id: uuid.UUID) -> dict[tuple[object, ...], tuple[object, ...]]:
    rows = await raw_sql.fetch(sql, user_id)
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


@settings(max_examples=20, deadline=None)
@given(history=histories(CHAT_SLOTS))
async def test_rollups_equal_a_sum_over_messages(history: list[Spent]) -> None:
    family = await new_family()
    await record(family, history, TABLE, messages=True)
    user = family.user.id
    pairs = [
        ("c.owner_id", "user_id", "cost_user_days"),
        ("c.id", "chat_id", "cost_chat_days"),
        ("c.root_id", "root_chat_id", "cost_chat_days"),
        (
            "coalesce(m.model_config_id, '00000000-0000-0000-0000-000000000000'::uuid)",
            "model_config_id",
            "cost_model_days",
        ),
    ]
    for message_key, rollup_key, table in pairs:
        from_messages = await _keyed(_FROM_MESSAGES.format(key=message_key), user)
        rollup = _ROLLUP.format(key=rollup_key, table=table)
        if table == "cost_chat_days" and rollup_key == "root_chat_id":
            rollup = """SELECT root_chat_id, day, sum(cost_micros)::bigint,
              sum(priced_count)::bigint, sum(unpriced_count)::bigint,
              sum(input_tokens)::bigint, sum(output_tokens)::bigint,
              sum(reasoning_tokens)::bigint, sum(cache_read_tokens)::bigint,
              sum(cache_write_tokens)::bigint
            FROM cost_chat_days WHERE user_id = $1 GROUP BY 1, 2"""
        assert await _keyed(rollup, user) == from_messages, table


async def test_a_deleted_chat_keeps_its_spend_without_a_title() -> None:
    family = await new_family()
    history = [Spent(SUB_B, 0, datetime(2026, 3, 3, 9, tzinfo=UTC), Usage(1000, 1000))]
    await record(family, history, TABLE)
    await Chat.filter(id=family.chats[ROOT_B]).delete()  # sub-agents cascade
    days = DayRange(date(2026, 3, 3), date(2026, 3, 4))
    page = await cost_rollups.by_chat(family.user.id, days, first=10, after=None)
    (row,) = page.items
    assert row.chat_id == family.chats[ROOT_B]
    assert row.title is None
    assert row.owner_id is None
    assert row.sums.cost_micros > 0


async def test_a_cursor_of_another_ordering_is_refused() -> None:
    family = await new_family()
    days = DayRange(date(2026, 3, 1), date(2026, 3, 2))
    with pytest.raises(InvalidCursor):
        await cost_rollups.by_chat(family.user.id, days, first=1, after="bm90IGEgY3Vyc29y")
