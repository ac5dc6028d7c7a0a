"""The one spend path every model call takes: hold → call → settle (or release).

1. ``hold``: before the call, reserve its worst-case cost on the user's counter
   for the current period in ONE conditional upsert (``spent + reserved + hold <=
   limit``); concurrent holds serialise on that row, so the limit is never
   overshot. A tight budget clamps the call's max output tokens so that the hold
   still covers the worst case (a second round trip, only then).
2. ``settle``: in the transaction that writes the message (or log row), replace
   the hold by the actual cost on all three period counters and upsert the day
   rollups — one statement. Counter rows are always locked in one order
   (user, period, period start), by settle and sweep alike, so two of them
   touching the same user's counters wait for each other instead of deadlocking.
3. ``release``: a call that failed gives its hold back; holds of workers that
   died expire (renewed while their worker lives) and ``sweep`` returns them.

With limits off or no limit for the user no hold is taken (the same single
statement says so), but ``settle`` still counts the spend, so turning limits on
mid-period starts from the truth.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import Tortoise

from db.costing import ModelPrices, Usage, cost_micros, micros_for_tokens
from db.usage_limits import period_end, period_starts, utc_day
from db.vocabulary import NIL_UUID, UsageLimitPeriod, UsageLimitSource

# How long a hold lives without renewal: its worker renews it on every heartbeat.
# No call lives longer than HOLD_MAX_AGE (a provider stream times out in minutes,
# the gateway's hold lasts 2 h), so an older hold is a leak and is swept anyway.
HOLD_TTL = timedelta(minutes=10)
HOLD_MAX_AGE = timedelta(hours=6)
# Output tokens reserved for a call whose model sets no maximum (it is then sent
# to the provider as the call's maximum, so the hold covers it).
DEFAULT_OUTPUT_TOKENS = 16_384
# A call clamped below this many output tokens could not say anything useful.
MIN_OUTPUT_TOKENS = 256
# Clamp-and-retry rounds against concurrent holds before refusing.
HOLD_ROUNDS = 3
SWEEP_BATCH = 1000

_HOLD = """
WITH s AS (
  SELECT coalesce(max(enabled::int), 0) = 1 AS enabled,
    coalesce(max(period), 'month') AS period, max(default_limit_micros) AS default_limit
  FROM usage_limit_settings WHERE id = 1
), lim AS (
  SELECT s.period, u.spend_limit_micros AS user_limit, s.enabled, s.default_limit,
    (SELECT min(g.spend_limit_micros) FROM group_members m JOIN groups g ON g.id = m.group_id
      WHERE m.user_id = u.id) AS group_limit,
    date_trunc(s.period, $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start
  FROM s, users u WHERE u.id = $1
), eff AS (
  SELECT period, start, CASE WHEN NOT enabled THEN NULL
      ELSE coalesce(user_limit, group_limit, default_limit) END AS limit_micros,
    CASE WHEN NOT enabled THEN 'none' WHEN user_limit IS NOT NULL THEN 'user'
      WHEN group_limit IS NOT NULL THEN 'group' WHEN default_limit IS NOT NULL THEN 'deployment'
      ELSE 'none' END AS source
  FROM lim
), counter AS (
  INSERT INTO spend_counters AS c (user_id, period, period_start, spent_micros, reserved_micros)
  SELECT $1, eff.period, eff.start, 0, $3::bigint FROM eff
  WHERE eff.limit_micros IS NOT NULL AND $4::boolean AND $3::bigint <= eff.limit_micros
  ON CONFLICT (user_id, period, period_start) DO UPDATE
    SET reserved_micros = c.reserved_micros + EXCLUDED.reserved_micros
    WHERE c.spent_micros + c.reserved_micros + EXCLUDED.reserved_micros
      <= (SELECT limit_micros FROM eff)
  RETURNING c.period, c.period_start
), hold AS (
  INSERT INTO spend_holds (user_id, period, period_start, amount_micros, worker_id,
    created_at, expires_at)
  SELECT $1, period, period_start, $3::bigint, $5::uuid, $2::timestamptz, $6::timestamptz
  FROM counter RETURNING id
)
SELECT eff.period, eff.start, eff.limit_micros, eff.source, (SELECT id FROM hold) AS hold_id,
  coalesce(c.spent_micros, 0) AS spent, coalesce(c.reserved_micros, 0) AS reserved
FROM eff LEFT JOIN spend_counters c
  ON c.user_id = $1 AND c.period = eff.period AND c.period_start = eff.start
"""

_SUMS = (
    "cost_micros = {t}.cost_micros + EXCLUDED.cost_micros,"
    " priced_count = {t}.priced_count + EXCLUDED.priced_count,"
    " unpriced_count = {t}.unpriced_count + EXCLUDED.unpriced_count,"
    " input_tokens = {t}.input_tokens + EXCLUDED.input_tokens,"
    " output_tokens = {t}.output_tokens + EXCLUDED.output_tokens,"
    " reasoning_tokens = {t}.reasoning_tokens + EXCLUDED.reasoning_tokens,"
    " cache_read_tokens = {t}.cache_read_tokens + EXCLUDED.cache_read_tokens,"
    " cache_write_tokens = {t}.cache_write_tokens + EXCLUDED.cache_write_tokens"
)
_COLUMNS = (
    "cost_micros, priced_count, unpriced_count, input_tokens, output_tokens,"
    " reasoning_tokens, cache_read_tokens, cache_write_tokens"
)
_VALUES = (
    "coalesce($3::bigint, 0), ($3::bigint IS NOT NULL)::int, ($3::bigint IS NULL)::int,"
    " $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint"
)

_SETTLE = f"""
WITH released AS (
  DELETE FROM spend_holds WHERE id = $1::bigint RETURNING period, period_start, amount_micros
), periods AS (
  SELECT period, period_start, max(spent) AS spent FROM (
    VALUES ('day'::varchar, $10::timestamptz, coalesce($3::bigint, 0)),
      ('week', $11::timestamptz, coalesce($3::bigint, 0)),
      ('month', $12::timestamptz, coalesce($3::bigint, 0))
    UNION ALL SELECT period, period_start, 0 FROM released
  ) x(period, period_start, spent) GROUP BY period, period_start
), counters AS (
  INSERT INTO spend_counters AS c (user_id, period, period_start, spent_micros, reserved_micros)
  SELECT $2::uuid, period, period_start, spent, 0 FROM periods ORDER BY period, period_start
  ON CONFLICT (user_id, period, period_start) DO UPDATE SET
    spent_micros = c.spent_micros + EXCLUDED.spent_micros,
    reserved_micros = greatest(c.reserved_micros - coalesce((SELECT sum(r.amount_micros)
      FROM released r WHERE r.period = c.period AND r.period_start = c.period_start), 0), 0)
  RETURNING 1
), user_day AS (
  INSERT INTO cost_user_days AS d (user_id, day, {_COLUMNS})
  VALUES ($2::uuid, $9::date, {_VALUES})
  ON CONFLICT (user_id, day) DO UPDATE SET {_SUMS.format(t="d")}
  RETURNING 1
), model_day AS (
  INSERT INTO cost_model_days AS d (user_id, day, model_config_id, provider, model, {_COLUMNS})
  VALUES ($2::uuid, $9::date, $13::uuid, $14::varchar, $15::varchar, {_VALUES})
  ON CONFLICT (user_id, day, model_config_id) DO UPDATE SET
    provider = EXCLUDED.provider, model = EXCLUDED.model, {_SUMS.format(t="d")}
  RETURNING 1
), chat_day AS (
  INSERT INTO cost_chat_days AS d (user_id, chat_id, root_chat_id, day, {_COLUMNS})
  SELECT $2::uuid, $16::uuid, $17::uuid, $9::date, {_VALUES} WHERE $16::uuid IS NOT NULL
  ON CONFLICT (chat_id, day, user_id) DO UPDATE SET {_SUMS.format(t="d")}
  RETURNING 1
)
SELECT (SELECT count(*) FROM counters) + (SELECT count(*) FROM user_day)
  + (SELECT count(*) FROM model_day) + (SELECT count(*) FROM chat_day) AS written
"""

_RELEASE = """
WITH released AS (
  DELETE FROM spend_holds WHERE id = $1::bigint
  RETURNING user_id, period, period_start, amount_micros
)
UPDATE spend_counters c SET reserved_micros = greatest(c.reserved_micros - r.amount_micros, 0)
FROM released r
WHERE c.user_id = r.user_id AND c.period = r.period AND c.period_start = r.period_start
"""

_SWEEP = """
WITH gone AS (
  DELETE FROM spend_holds WHERE id IN (
    SELECT id FROM spend_holds WHERE expires_at < $1::timestamptz OR created_at < $3::timestamptz
    ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING user_id, period, period_start, amount_micros
), sums AS (
  SELECT user_id, period, period_start, sum(amount_micros) AS amount, count(*) AS holds
  FROM gone GROUP BY user_id, period, period_start
), locked AS (
  SELECT c.id FROM spend_counters c JOIN sums s
    ON c.user_id = s.user_id AND c.period = s.period AND c.period_start = s.period_start
  ORDER BY c.user_id, c.period, c.period_start FOR UPDATE OF c
), updated AS (
  UPDATE spend_counters c SET reserved_micros = greatest(c.reserved_micros - s.amount, 0)
  FROM sums s
  WHERE c.id IN (SELECT id FROM locked)
    AND c.user_id = s.user_id AND c.period = s.period AND c.period_start = s.period_start
  RETURNING 1
)
SELECT coalesce(sum(holds), 0) AS swept, (SELECT count(*) FROM updated) AS counters FROM sums
"""


class SpendRefused(Exception):
    """The base of the two reasons a model call may not start."""


@dataclass(frozen=True, slots=True)
class LimitFacts:
    """What a refusal tells the user: USAGE_LIMIT_EXCEEDED's extensions."""

    source: UsageLimitSource
    period: UsageLimitPeriod
    limit_micros: int
    spent_micros: int
    reserved_micros: int
    resets_at: datetime


class UsageLimitExceeded(SpendRefused):
    def __init__(self, facts: LimitFacts) -> None:
        super().__init__(
            f"The usage limit of {facts.limit_micros / 1e6:.2f} USD for this "
            f"{facts.period.value} is reached; it resets at {facts.resets_at.isoformat()}."
        )
        self.facts = facts


class UnpricedModel(SpendRefused):
    """Limits apply to the user but the model has no prices: a configuration
    error an admin must fix, never a free call."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model {model!r} has no prices, and spend limits are on: an "
            "administrator must set its input and output prices before it can be used."
        )
        self.model = model


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation (``id`` None when no limit applies) and the output cap the
    call must be sent with (None: leave the model's own)."""

    id: int | None
    amount_micros: int
    max_output_tokens: int | None


NO_HOLD = Hold(None, 0, None)


def input_hold_micros(prices: ModelPrices, input_tokens: int) -> int:
    return micros_for_tokens(input_tokens, prices.worst_input_micros())


def affordable_output(
    prices: ModelPrices, input_tokens: int, budget_micros: int, wanted: int
) -> int:
    """The most output tokens (≤ ``wanted``) whose worst case fits ``budget``."""
    _, out, _, _ = prices.effective()
    numerator = budget_micros * 1_000_000 - input_tokens * prices.worst_input_micros()
    if numerator < 0:
        return 0  # the prompt alone does not fit
    if out == 0:
        return wanted  # free output: the prompt is all it costs
    return min(numerator // out, wanted)


def hold_amount(prices: ModelPrices, input_tokens: int, output_tokens: int) -> int:
    """The worst case of a call: every input token at the dearest input price."""
    _, out, _, _ = prices.effective()
    numerator = input_tokens * prices.worst_input_micros() + output_tokens * out
    return -(-numerator // 1_000_000)


async def _execute(sql: str, args: list[Any], conn: Any = None) -> list[Any]:
    client = conn if conn is not None else Tortoise.get_connection("default")
    _, rows = await client.execute_query(sql, args)
    return list(rows)


async def hold(
    user_id: uuid.UUID,
    prices: ModelPrices,
    *,
    model: str,
    input_tokens: int,
    max_output_tokens: int | None,
    worker_id: uuid.UUID | None,
    at: datetime | None = None,
    ttl: timedelta = HOLD_TTL,
) -> Hold:
    """Reserve the call's worst case, or raise ``UsageLimitExceeded`` /
    ``UnpricedModel``. ``input_tokens`` is an upper bound of the prompt's size."""
    now = at or datetime.now(UTC)
    wanted = max_output_tokens or DEFAULT_OUTPUT_TOKENS
    priced = prices.priced
    output = wanted
    for _ in range(HOLD_ROUNDS):
        amount = hold_amount(prices, input_tokens, output) if priced else 0
        args = [user_id, now, amount, priced, worker_id, now + ttl]
        rows = await _execute(_HOLD, args)
        if not rows:
            return NO_HOLD  # no such user: nothing to hold against
        row = rows[0]
        limit = row["limit_micros"]
        if limit is None:
            return NO_HOLD
        if not priced:
            raise UnpricedModel(model)
        if row["hold_id"] is not None:
            return Hold(int(row["hold_id"]), amount, output)
        period = UsageLimitPeriod(row["period"])
        start: datetime = row["start"]
        facts = LimitFacts(
            source=UsageLimitSource(row["source"]),
            period=period,
            limit_micros=int(limit),
            spent_micros=int(row["spent"]),
            reserved_micros=int(row["reserved"]),
            resets_at=period_end(period, start),
        )
        budget = facts.limit_micros - facts.spent_micros - facts.reserved_micros
        output = affordable_output(prices, input_tokens, budget, wanted)
        if output < min(MIN_OUTPUT_TOKENS, wanted):
            raise UsageLimitExceeded(facts)
    raise UsageLimitExceeded(facts)


@dataclass(frozen=True, slots=True)
class Charge:
    """One model call's spend, as the ledger records it."""

    user_id: uuid.UUID
    usage: Usage
    prices: ModelPrices
    model_config_id: uuid.UUID | None
    provider: str
    model: str
    chat_id: uuid.UUID | None = None
    root_chat_id: uuid.UUID | None = None
    at: datetime | None = None

    @property
    def cost_micros(self) -> int | None:
        return cost_micros(self.prices, self.usage)

    def columns(self) -> dict[str, Any]:
        """The message row's usage, cost and price columns."""
        return {
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "cache_read_tokens": self.usage.cache_read_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "total_cost_micros": self.cost_micros,
            "input_price_micros": self.prices.input_micros,
            "output_price_micros": self.prices.output_micros,
            "cache_read_price_micros": self.prices.cache_read_micros,
            "cache_write_price_micros": self.prices.cache_write_micros,
        }


async def settle(conn: Any, spend: Hold | None, charge: Charge) -> None:
    """Record ``charge`` and give back ``spend``'s hold, in the caller's
    transaction (the one that writes the message), as one statement."""
    at = charge.at or datetime.now(UTC)
    starts = period_starts(at)
    usage = charge.usage
    await _execute(
        _SETTLE,
        [
            spend.id if spend is not None else None,
            charge.user_id,
            charge.cost_micros,
            usage.input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            utc_day(at),
            starts[UsageLimitPeriod.DAY],
            starts[UsageLimitPeriod.WEEK],
            starts[UsageLimitPeriod.MONTH],
            charge.model_config_id or NIL_UUID,
            charge.provider[:32],
            charge.model[:200],
            charge.chat_id,
            charge.root_chat_id or charge.chat_id,
        ],
        conn,
    )


async def release(spend: Hold | None, conn: Any = None) -> None:
    """Give a hold back unused (the call failed before it cost anything known)."""
    if spend is None or spend.id is None:
        return
    await _execute(_RELEASE, [spend.id], conn)


async def renew(
    worker_id: uuid.UUID, at: datetime | None = None, ttl: timedelta = HOLD_TTL
) -> None:
    """Keep a live worker's holds from expiring (called with its heartbeat)."""
    now = at or datetime.now(UTC)
    await _execute(
        "UPDATE spend_holds SET expires_at = $2 WHERE worker_id = $1", [worker_id, now + ttl]
    )


async def sweep(at: datetime | None = None) -> int:
    """Return expired holds (their workers died) to their counters, and holds
    older than ``HOLD_MAX_AGE`` however renewed (a live worker whose settle failed
    would otherwise keep one reserved for as long as it runs)."""
    now = at or datetime.now(UTC)
    rows = await _execute(_SWEEP, [now, SWEEP_BATCH, now - HOLD_MAX_AGE])
    return int(rows[0]["swept"]) if rows else 0
