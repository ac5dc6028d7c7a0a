"""The spend path: holds never overshoot, settle counts, release and sweep give back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from db import spend
from db.costing import ModelPrices, Usage
from db.models import CostUserDay, SpendCounter, SpendHold, User
from db.usage_limits import LimitSettings, limit_status, write_settings
from db.vocabulary import UsageLimitPeriod, UsageLimitSource
from resolvers.accounts import create_user
from tests.harness import PASSWORD

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
    from tortoise.transactions import in_transaction

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
