"""The spend path: holds never overshoot, settle counts, release and sweep give back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise.transactions import in_transaction

from db import spend
from db.costing import ModelPrices, Usage
from db.models import CostUserDay, Group, GroupMember, SpendCounter, SpendHold, User
from db.usage_limits import LimitSettings, limit_status, period_start, write_settings
from db.vocabulary import UsageLimitPeriod, UsageLimitSource
from resolvers.accounts import create_user
from tests.harness import PASSWORD, counted_queries

# $1 per million input tokens, $2 per million output tokens.
PRICES = ModelPrices(input_micros=1_000_000, output_micros=2_000_000)
FREE = ModelPrices(0, 0, 0, 0)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="module")
async def spender(app: Starlette) -> User:
    return await create_user(f"spender-{uuid.uuid4().hex[:6]}", PASSWORD)


@pytest.fixture(autouse=True)
async def clean(spender: User) -> AsyncIterator[None]:
    await SpendHold.filter(user_id=spender.id).delete()
    await SpendCounter.filter(user_id=spender.id).delete()
    await CostUserDay.filter(user_id=spender.id).delete()
    spender.spend_limit_micros = None
    await spender.save(update_fields=["spend_limit_micros"])
    yield
    await write_settings(LimitSettings(False, UsageLimitPeriod.MONTH, None))


def _charge(user: User, usage: Usage, at: datetime = NOW) -> spend.Charge:
    return spend.Charge(
        user_id=user.id,
        usage=usage,
        prices=PRICES,
        model_config_id=None,
        provider="openai",
        model="m",
        at=at,
    )


async def test_no_limit_takes_no_hold_but_counts_spend(spender: User) -> None:
    got = await spend.hold(
        spender.id,
        PRICES,
        model="m",
        input_tokens=1000,
        max_output_tokens=100,
        worker_id=None,
        at=NOW,
    )
    assert got == spend.NO_HOLD
    async with in_transaction() as conn:
        await spend.settle(conn, got, _charge(spender, Usage(1000, 100)))
    status = await limit_status(spender.id, NOW)
    assert status.source is UsageLimitSource.NONE
    assert status.spent_micros == 1000 + 200


async def test_concurrent_holds_never_overshoot(spender: User) -> None:
    await write_settings(LimitSettings(True, UsageLimitPeriod.DAY, 10_000))

    # each call: 1000 input ($0.001) + 1000 output ($0.002) = 3000 micros worst case
    async def one() -> spend.Hold | None:
        try:
            return await spend.hold(
                spender.id,
                PRICES,
                model="m",
                input_tokens=1000,
                max_output_tokens=1000,
                worker_id=None,
                at=NOW,
            )
        except spend.UsageLimitExceeded:
            return None

    holds = await asyncio.gather(*(one() for _ in range(20)))
    taken = [h for h in holds if h is not None]
    assert sum(h.amount_micros for h in taken) <= 10_000
    status = await limit_status(spender.id, NOW)
    assert status.reserved_micros == sum(h.amount_micros for h in taken)
    # three full holds (9000) and one clamped to what is left (1000 - 1000 input → 0 output
    # is below the minimum), so exactly three
    assert len(taken) == 3
    for h in taken:
        await spend.release(h)
    assert (await limit_status(spender.id, NOW)).reserved_micros == 0


async def test_sweep_returns_expired_holds(spender: User) -> None:
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, 1_000_000))
    h = await spend.hold(
        spender.id,
        PRICES,
        model="m",
        input_tokens=10,
        max_output_tokens=10,
        worker_id=uuid.uuid4(),
        at=NOW,
        ttl=timedelta(seconds=1),
    )
    assert h.id is not None
    assert (await limit_status(spender.id, NOW)).reserved_micros == h.amount_micros
    assert await spend.sweep(NOW + timedelta(seconds=2)) >= 1
    assert (await limit_status(spender.id, NOW)).reserved_micros == 0


async def test_a_hold_renewed_past_any_calls_life_is_swept_anyway(spender: User) -> None:
    # A live worker whose settle failed keeps renewing the hold it never settled.
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, 1_000_000))
    worker = uuid.uuid4()
    h = await spend.hold(
        spender.id,
        PRICES,
        model="m",
        input_tokens=10,
        max_output_tokens=10,
        worker_id=worker,
        at=NOW,
    )
    later = NOW + spend.HOLD_MAX_AGE + timedelta(minutes=1)
    await spend.renew(worker, later)  # still renewed: not expired
    assert await spend.sweep(later - timedelta(hours=1)) == 0  # younger than the cap
    assert await spend.sweep(later) == 1
    assert (await limit_status(spender.id, NOW)).reserved_micros == 0
    assert h.id is not None
    assert not await SpendHold.filter(id=h.id).exists()


async def _hold(user: User, at: datetime = NOW, **kwargs: Any) -> spend.Hold:
    values: dict[str, Any] = {
        "model": "m",
        "input_tokens": 1000,
        "max_output_tokens": 1000,
        "worker_id": None,
        "at": at,
    }
    return await spend.hold(user.id, PRICES, **{**values, **kwargs})


async def _settle(hold: spend.Hold, charge: spend.Charge) -> None:
    async with in_transaction() as conn:
        await spend.settle(conn, hold, charge)


async def _counter(user: User, period: UsageLimitPeriod, at: datetime) -> tuple[int, int]:
    """(spent, reserved) of the counter of ``period`` containing ``at``."""
    row = await SpendCounter.filter(
        user_id=user.id, period=period, period_start=period_start(period, at)
    ).first()
    return (row.spent_micros, row.reserved_micros) if row is not None else (0, 0)


async def _limit(user: User, limit: int, period: UsageLimitPeriod = UsageLimitPeriod.DAY) -> None:
    await write_settings(LimitSettings(True, period, None))
    user.spend_limit_micros = limit
    await user.save(update_fields=["spend_limit_micros"])


# -- clamping ------------------------------------------------------------------------------


async def test_a_tight_budget_lowers_the_calls_max_output_tokens(spender: User) -> None:
    await _limit(spender, 10_000)
    # 1000 input tokens hold 1000 µ$ at $1/M; what is left buys 4500 output tokens at $2/M
    got = await _hold(spender, max_output_tokens=None)
    assert got.id is not None
    assert got.max_output_tokens == 4500
    assert got.amount_micros == 10_000
    assert (await limit_status(spender.id, NOW)).remaining_micros == 0


async def test_an_untight_budget_keeps_the_models_maximum(spender: User) -> None:
    await _limit(spender, 1_000_000)
    got = await _hold(spender, max_output_tokens=2000)
    assert got.max_output_tokens == 2000
    assert got.amount_micros == 1000 + 4000
    # no maximum set: the default is held, and then sent, so the hold covers it
    default = await _hold(spender, max_output_tokens=None)
    assert default.max_output_tokens == spend.DEFAULT_OUTPUT_TOKENS


async def test_a_clamp_below_the_minimum_output_is_refused(spender: User) -> None:
    # 1000 µ$ of input leaves room for 255 output tokens: too few to say anything
    await _limit(spender, 1000 + 2 * (spend.MIN_OUTPUT_TOKENS - 1))
    with pytest.raises(spend.UsageLimitExceeded) as refused:
        await _hold(spender)
    facts = refused.value.facts
    assert facts.source is UsageLimitSource.USER
    assert facts.period is UsageLimitPeriod.DAY
    assert (facts.limit_micros, facts.spent_micros, facts.reserved_micros) == (1510, 0, 0)
    assert facts.resets_at == datetime(2026, 3, 3, tzinfo=UTC)
    assert await SpendHold.filter(user_id=spender.id).count() == 0
    assert (await limit_status(spender.id, NOW)).reserved_micros == 0
    # one more micro-dollar's worth of room is exactly the minimum
    await _limit(spender, 1000 + 2 * spend.MIN_OUTPUT_TOKENS)
    assert (await _hold(spender)).max_output_tokens == spend.MIN_OUTPUT_TOKENS


async def test_a_spent_budget_refuses_with_the_facts(spender: User) -> None:
    await _limit(spender, 5000, UsageLimitPeriod.WEEK)
    await _settle(spend.NO_HOLD, _charge(spender, Usage(1000, 2000)))  # 5000 µ$
    with pytest.raises(spend.UsageLimitExceeded) as refused:
        await _hold(spender)
    facts = refused.value.facts
    assert (facts.spent_micros, facts.limit_micros) == (5000, 5000)
    assert facts.resets_at == datetime(2026, 3, 9, tzinfo=UTC)  # the next Monday


async def test_an_unpriced_model_under_a_limit_is_refused_not_free(spender: User) -> None:
    await _limit(spender, 1_000_000)
    with pytest.raises(spend.UnpricedModel, match="administrator must set"):
        await spend.hold(
            spender.id,
            ModelPrices(input_micros=1_000_000),
            model="local-llama",
            input_tokens=10,
            max_output_tokens=10,
            worker_id=None,
            at=NOW,
        )
    # without a limit nothing is held and the call is recorded as unpriced
    await write_settings(LimitSettings(False, UsageLimitPeriod.DAY, None))
    assert (
        await spend.hold(
            spender.id,
            ModelPrices(),
            model="x",
            input_tokens=1,
            max_output_tokens=1,
            worker_id=None,
        )
        == spend.NO_HOLD
    )


# -- periods -------------------------------------------------------------------------------

BOUNDARIES = [
    # (the limit's period, the hold's time, the settle's time)
    (UsageLimitPeriod.DAY, datetime(2026, 3, 3, 23, 59, 59, tzinfo=UTC)),  # Tue → Wed
    (UsageLimitPeriod.WEEK, datetime(2026, 3, 8, 23, 59, 59, tzinfo=UTC)),  # Sun → Mon
    (UsageLimitPeriod.MONTH, datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)),  # Mar → Apr
]


@pytest.mark.parametrize(("period", "before"), BOUNDARIES, ids=["midnight", "monday", "the-1st"])
async def test_a_call_settled_after_a_period_boundary(
    spender: User, period: UsageLimitPeriod, before: datetime
) -> None:
    await _limit(spender, 1_000_000, period)
    after = before + timedelta(seconds=2)
    held = await _hold(spender, at=before)
    assert await _counter(spender, period, before) == (0, held.amount_micros)

    await _settle(held, _charge(spender, Usage(1000, 500), at=after))  # 2000 µ$

    # the hold's counter loses its reservation and gains nothing...
    assert await _counter(spender, period, before) == (0, 0)
    # ...the spend is in the new period's counters, every period's
    for each in UsageLimitPeriod:
        assert await _counter(spender, each, after) == (2000, 0), each
    status = await limit_status(spender.id, after)
    assert (status.spent_micros, status.reserved_micros) == (2000, 0)
    assert status.period_start == period_start(period, after) > before
    day = await CostUserDay.get(user_id=spender.id)
    assert day.day == after.date()
    assert day.cost_micros == 2000


async def test_every_periods_counter_is_kept_so_switching_keeps_exact_spend(
    spender: User,
) -> None:
    charges = [
        (datetime(2026, 2, 27, 9, tzinfo=UTC), 1),  # a Friday in February
        (datetime(2026, 3, 2, 9, tzinfo=UTC), 20),  # Monday
        (datetime(2026, 3, 4, 9, tzinfo=UTC), 300),  # Wednesday, same week
        (datetime(2026, 3, 9, 9, tzinfo=UTC), 4000),  # the next Monday
        (datetime(2026, 3, 9, 18, tzinfo=UTC), 50000),  # the same day
    ]
    for at, input_tokens in charges:
        await _settle(spend.NO_HOLD, _charge(spender, Usage(input_tokens, 0), at=at))
    at = datetime(2026, 3, 9, 20, tzinfo=UTC)
    expected = {
        UsageLimitPeriod.DAY: 54000,
        UsageLimitPeriod.WEEK: 54000,
        UsageLimitPeriod.MONTH: 54320,
    }
    for period, spent in expected.items():
        await _limit(spender, 10_000_000, period)
        status = await limit_status(spender.id, at)
        assert status.spent_micros == spent, period
    await _limit(spender, 10_000_000, UsageLimitPeriod.WEEK)
    assert (await limit_status(spender.id, datetime(2026, 3, 5, tzinfo=UTC))).spent_micros == 320


# -- release and sweep ---------------------------------------------------------------------


async def test_release_is_idempotent(spender: User) -> None:
    await _limit(spender, 1_000_000)
    first, second = await _hold(spender), await _hold(spender)
    await spend.release(first)
    await spend.release(first)
    assert (await limit_status(spender.id, NOW)).reserved_micros == second.amount_micros
    await spend.release(spend.NO_HOLD)
    await spend.release(None)
    assert (await limit_status(spender.id, NOW)).reserved_micros == second.amount_micros


async def test_a_swept_hold_settled_later_is_not_subtracted_twice(spender: User) -> None:
    await _limit(spender, 1_000_000)
    dead = await _hold(spender, ttl=timedelta(seconds=1), worker_id=uuid.uuid4())
    alive = await _hold(spender, worker_id=uuid.uuid4())
    assert await spend.sweep(NOW + timedelta(seconds=5)) == 1
    assert (await limit_status(spender.id, NOW)).reserved_micros == alive.amount_micros

    # the worker was only slow: its call ends and settles after the sweep
    await _settle(dead, _charge(spender, Usage(1000, 500)))
    status = await limit_status(spender.id, NOW)
    assert (status.spent_micros, status.reserved_micros) == (2000, alive.amount_micros)
    assert await spend.sweep(NOW + timedelta(seconds=5)) == 0


async def test_sweep_and_settle_racing_give_the_hold_back_once(spender: User) -> None:
    await _limit(spender, 10_000_000)
    alive = await _hold(spender, worker_id=uuid.uuid4())
    for _ in range(10):
        dead = await _hold(spender, ttl=timedelta(seconds=1), worker_id=uuid.uuid4())
        await asyncio.gather(
            spend.sweep(NOW + timedelta(seconds=5)),
            _settle(dead, _charge(spender, Usage(1000, 500))),
        )
    status = await limit_status(spender.id, NOW)
    assert (status.spent_micros, status.reserved_micros) == (20_000, alive.amount_micros)


async def test_renewal_keeps_a_live_workers_holds(spender: User) -> None:
    await _limit(spender, 1_000_000)
    worker = uuid.uuid4()
    mine = await _hold(spender, ttl=timedelta(seconds=1), worker_id=worker)
    await spend.renew(worker, at=NOW)
    assert await spend.sweep(NOW + timedelta(seconds=5)) == 0
    assert (await limit_status(spender.id, NOW)).reserved_micros == mine.amount_micros
    assert await spend.sweep(NOW + spend.HOLD_TTL + timedelta(seconds=1)) == 1


# -- round trips ---------------------------------------------------------------------------


async def test_hold_and_settle_are_one_statement_each(spender: User) -> None:
    await _limit(spender, 1_000_000)
    with counted_queries() as sent:
        held = await _hold(spender)
    assert held.id is not None
    assert len(sent) == 1, sent
    async with in_transaction() as conn:
        message_like = await conn.execute_query("SELECT 1")  # the caller's own write
        assert message_like
        with counted_queries() as sent:
            await spend.settle(conn, held, _charge(spender, Usage(1000, 500)))
    assert len(sent) == 1, sent
    with counted_queries() as sent:
        await spend.release(await _hold(spender))
    assert len(sent) == 2, sent  # the hold, then the release


async def test_without_a_limit_the_hold_is_one_statement_too(spender: User) -> None:
    with counted_queries() as sent:
        assert await _hold(spender) == spend.NO_HOLD
    assert len(sent) == 1, sent


async def test_only_a_tight_budget_costs_a_second_statement(spender: User) -> None:
    await _limit(spender, 10_000)
    with counted_queries() as sent:
        got = await _hold(spender, max_output_tokens=None)
    assert got.max_output_tokens == 4500
    assert len(sent) == 2, sent


# -- whose limit the hold enforces -----------------------------------------------------------


async def _refusal_source(user: User) -> tuple[UsageLimitSource, int]:
    """Hold more than any limit here allows: the refusal names the limit applied."""
    with pytest.raises(spend.UsageLimitExceeded) as refused:
        await _hold(user, input_tokens=10_000_000, max_output_tokens=None)
    return refused.value.facts.source, refused.value.facts.limit_micros


async def test_the_hold_applies_user_then_lowest_group_then_default(spender: User) -> None:
    """The hold's single statement resolves the limit as ``limit_status`` does."""
    tag = uuid.uuid4().hex[:6]
    generous = await Group.create(name=f"generous-{tag}", spend_limit_micros=9_000_000)
    strict = await Group.create(name=f"strict-{tag}", spend_limit_micros=7_000_000)
    unlimited = await Group.create(name=f"open-{tag}")
    for group in (generous, strict, unlimited):
        await GroupMember.create(group=group, user=spender)
    try:
        await write_settings(LimitSettings(True, UsageLimitPeriod.DAY, 8_000_000))
        assert await _refusal_source(spender) == (UsageLimitSource.GROUP, 7_000_000)
        spender.spend_limit_micros = 5_000_000
        await spender.save(update_fields=["spend_limit_micros"])
        assert await _refusal_source(spender) == (UsageLimitSource.USER, 5_000_000)
        spender.spend_limit_micros = None
        await spender.save(update_fields=["spend_limit_micros"])
        await GroupMember.filter(user_id=spender.id, group_id__in=[generous.id, strict.id]).delete()
        assert await _refusal_source(spender) == (UsageLimitSource.DEPLOYMENT, 8_000_000)
        status = await limit_status(spender.id, NOW)
        assert (status.source, status.limit_micros) == (UsageLimitSource.DEPLOYMENT, 8_000_000)
        # limits off: nothing is held, whatever the overrides say
        await write_settings(LimitSettings(False, UsageLimitPeriod.DAY, 8_000_000))
        assert await _hold(spender, input_tokens=10_000_000) == spend.NO_HOLD
    finally:
        await Group.filter(id__in=[generous.id, strict.id, unlimited.id]).delete()


async def test_a_prompt_that_alone_exceeds_the_budget_is_refused_at_once(spender: User) -> None:
    """Free output cannot make room for a prompt the budget cannot pay for."""
    await _limit(spender, 500)
    free_output = ModelPrices(input_micros=1_000_000, output_micros=0)
    with counted_queries() as sent, pytest.raises(spend.UsageLimitExceeded):
        await spend.hold(
            spender.id,
            free_output,
            model="m",
            input_tokens=1000,
            max_output_tokens=100,
            worker_id=None,
            at=NOW,
        )
    assert len(sent) == 1, sent
