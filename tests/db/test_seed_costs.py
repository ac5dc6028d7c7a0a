"""``agentgql seed --costed``: the history's rollups are what ``settle`` would have written."""

from __future__ import annotations

import uuid

import pytest
from starlette.applications import Starlette

from db.costing import ModelPrices, Usage, cost_micros
from db.models import User
from db.raw_sql import fetch
from db.seed import seed_costed_history
from resolvers.accounts import create_user
from tests.harness import PASSWORD

_TOKENS = "input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens"
_SUMS = (
    "sum(coalesce(total_cost_micros, 0)) AS cost, count(total_cost_micros) AS priced, "
    "count(*) - count(total_cost_micros) AS unpriced, "
    + ", ".join(f"sum({c.strip()}) AS {c.strip()}" for c in _TOKENS.split(","))
)
_ROLLED = (
    "sum(cost_micros) AS cost, sum(priced_count) AS priced, sum(unpriced_count) AS unpriced, "
    + ", ".join(f"sum({c.strip()}) AS {c.strip()}" for c in _TOKENS.split(","))
)
_MESSAGES = (
    "FROM chat_messages m JOIN chats c ON c.id = m.chat_id "
    "WHERE c.owner_id = $1 AND m.role = 'assistant'"
)


@pytest.fixture(scope="module")
async def owner(app: Starlette, database_url: str) -> User:
    user = await create_user(f"seeded-{uuid.uuid4().hex[:6]}", PASSWORD)
    # Twice: a second history adds to the first one's days instead of replacing them.
    await seed_costed_history(database_url, user.username, 30, 40, days=20)
    await seed_costed_history(database_url, user.username, 7, 12, days=3)
    return user


async def _by(sql: str, user: User) -> dict[tuple[object, ...], dict[str, object]]:
    rows = await fetch(sql, user.id)
    return {tuple(r["key"]): {k: v for k, v in r.items() if k != "key"} for r in rows}


async def test_history_has_the_messages_asked_for(owner: User) -> None:
    rows = await fetch(
        "SELECT count(*) AS n, count(*) FILTER (WHERE m.role = 'assistant') AS a "
        "FROM chat_messages m JOIN chats c ON c.id = m.chat_id WHERE c.owner_id = $1",
        owner.id,
    )
    assert (rows[0]["n"], rows[0]["a"]) == (30 * 40 + 7 * 12, 30 * 20 + 7 * 6)


async def test_each_message_costs_what_its_prices_and_usage_say(owner: User) -> None:
    rows = await fetch(f"SELECT m.* {_MESSAGES}", owner.id)
    unpriced = 0
    for row in rows:
        prices = ModelPrices(
            row["input_price_micros"],
            row["output_price_micros"],
            row["cache_read_price_micros"],
            row["cache_write_price_micros"],
        )
        usage = Usage(
            row["input_tokens"],
            row["output_tokens"],
            row["reasoning_tokens"],
            row["cache_read_tokens"],
            row["cache_write_tokens"],
        )
        assert row["total_cost_micros"] == cost_micros(prices, usage)
        assert row["model_config_id"] is not None
        unpriced += row["total_cost_micros"] is None
    assert 0 < unpriced < len(rows)


async def test_user_days_equal_the_sum_over_messages(owner: User) -> None:
    direct = await _by(
        f"SELECT ARRAY[(m.created_at AT TIME ZONE 'UTC')::date::text] AS key, {_SUMS} "
        f"{_MESSAGES} GROUP BY 1",
        owner,
    )
    rolled = await _by(
        f"SELECT ARRAY[day::text] AS key, {_ROLLED} FROM cost_user_days WHERE user_id = $1 "
        "GROUP BY 1",
        owner,
    )
    assert len(direct) > 10
    assert rolled == direct


async def test_model_days_equal_the_sum_over_messages(owner: User) -> None:
    direct = await _by(
        f"SELECT ARRAY[(m.created_at AT TIME ZONE 'UTC')::date::text, "
        f"m.model_config_id::text] AS key, {_SUMS} {_MESSAGES} GROUP BY 1",
        owner,
    )
    rolled = await _by(
        f"SELECT ARRAY[day::text, model_config_id::text] AS key, {_ROLLED} "
        "FROM cost_model_days WHERE user_id = $1 GROUP BY 1",
        owner,
    )
    assert rolled == direct
    names = await fetch(
        "SELECT DISTINCT provider, model FROM cost_model_days WHERE user_id = $1", owner.id
    )
    assert {(r["provider"], r["model"]) for r in names} == {
        ("scripted", "seed-small"),
        ("scripted", "seed-large"),
        ("scripted", "seed-unpriced"),
    }


async def test_chat_days_equal_the_sum_over_messages(owner: User) -> None:
    direct = await _by(
        f"SELECT ARRAY[m.chat_id::text, c.root_id::text, "
        f"(m.created_at AT TIME ZONE 'UTC')::date::text] AS key, {_SUMS} {_MESSAGES} GROUP BY 1",
        owner,
    )
    rolled = await _by(
        f"SELECT ARRAY[chat_id::text, root_chat_id::text, day::text] AS key, {_ROLLED} "
        "FROM cost_chat_days WHERE user_id = $1 GROUP BY 1",
        owner,
    )
    assert rolled == direct


@pytest.mark.parametrize("period", ["day", "week", "month"])
async def test_period_counters_equal_the_sum_over_messages(owner: User, period: str) -> None:
    direct = await _by(
        f"SELECT ARRAY[(date_trunc('{period}', m.created_at AT TIME ZONE 'UTC') "
        f"AT TIME ZONE 'UTC')::text] AS key, sum(coalesce(total_cost_micros, 0)) AS spent "
        f"{_MESSAGES} GROUP BY 1",
        owner,
    )
    counted = await _by(
        "SELECT ARRAY[period_start::text] AS key, spent_micros AS spent FROM spend_counters "
        f"WHERE user_id = $1 AND period = '{period}'",
        owner,
    )
    assert counted == direct
