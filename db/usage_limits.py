"""Spend limits: the deployment's settings, whose limit applies to a user, and
where their period stands — computed from UTC at read time, no reset job.

Resolution (Part B §2.9): limits off → none; else the user's override; else the
lowest override among the user's groups; else the deployment default (which may
be unset: unlimited). Periods are UTC-aligned: a day from midnight, a week from
Monday 00:00, a month from the 1st.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from db import raw_sql
from db.models import UsageLimitSettings
from db.vocabulary import UsageLimitPeriod, UsageLimitSource

SETTINGS_ID = 1


@dataclass(frozen=True, slots=True)
class LimitSettings:
    enabled: bool
    period: UsageLimitPeriod
    default_limit_micros: int | None


DEFAULT_SETTINGS = LimitSettings(False, UsageLimitPeriod.MONTH, None)


def period_start(period: UsageLimitPeriod, at: datetime) -> datetime:
    """The UTC start of the period that contains ``at``."""
    at = at.astimezone(UTC)
    day = datetime(at.year, at.month, at.day, tzinfo=UTC)
    if period is UsageLimitPeriod.DAY:
        return day
    if period is UsageLimitPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: UsageLimitPeriod, start: datetime) -> datetime:
    if period is UsageLimitPeriod.DAY:
        return start + timedelta(days=1)
    if period is UsageLimitPeriod.WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_starts(at: datetime) -> dict[UsageLimitPeriod, datetime]:
    """The start of each period containing ``at`` (spend counts in all three)."""
    return {period: period_start(period, at) for period in UsageLimitPeriod}


def utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


async def read_settings(conn: Any = None) -> LimitSettings:
    query = UsageLimitSettings.filter(id=SETTINGS_ID)
    row = await (query.using_db(conn) if conn is not None else query).first()
    if row is None:
        return DEFAULT_SETTINGS
    return LimitSettings(row.enabled, UsageLimitPeriod(row.period), row.default_limit_micros)


async def write_settings(settings: LimitSettings, conn: Any = None) -> LimitSettings:
    """Upserts the single row (all three values together)."""
    values = {
        "enabled": settings.enabled,
        "period": settings.period,
        "default_limit_micros": settings.default_limit_micros,
    }
    query = UsageLimitSettings.filter(id=SETTINGS_ID)
    if conn is not None:
        query = query.using_db(conn)
    if not await query.update(**values, updated_at=datetime.now(UTC)):
        await UsageLimitSettings.create(id=SETTINGS_ID, using_db=conn, **values)
    return settings


@dataclass(frozen=True, slots=True)
class EffectiveLimit:
    source: UsageLimitSource
    limit_micros: int | None  # None: unlimited


def resolve_limit(
    settings: LimitSettings, user_limit: int | None, group_limits: list[int]
) -> EffectiveLimit:
    if not settings.enabled:
        return EffectiveLimit(UsageLimitSource.NONE, None)
    if user_limit is not None:
        return EffectiveLimit(UsageLimitSource.USER, user_limit)
    if group_limits:
        return EffectiveLimit(UsageLimitSource.GROUP, min(group_limits))
    if settings.default_limit_micros is not None:
        return EffectiveLimit(UsageLimitSource.DEPLOYMENT, settings.default_limit_micros)
    return EffectiveLimit(UsageLimitSource.NONE, None)


# The user's override, their groups' lowest override, and their counter for the
# period: one round trip for a status read.
_STATUS = """
SELECT u.spend_limit_micros AS user_limit,
  (SELECT min(g.spend_limit_micros) FROM group_members m JOIN groups g ON g.id = m.group_id
    WHERE m.user_id = u.id AND g.spend_limit_micros IS NOT NULL) AS group_limit,
  coalesce(c.spent_micros, 0) AS spent, coalesce(c.reserved_micros, 0) AS reserved
FROM users u
LEFT JOIN spend_counters c ON c.user_id = u.id AND c.period = $2 AND c.period_start = $3
WHERE u.id = $1
"""


@dataclass(frozen=True, slots=True)
class LimitStatus:
    source: UsageLimitSource
    period: UsageLimitPeriod
    limit_micros: int | None
    spent_micros: int
    reserved_micros: int
    period_start: datetime
    resets_at: datetime

    @property
    def remaining_micros(self) -> int | None:
        if self.limit_micros is None:
            return None
        return max(self.limit_micros - self.spent_micros - self.reserved_micros, 0)

    @property
    def exhausted(self) -> bool:
        """No budget left to start anything (the hold decides for each call)."""
        remaining = self.remaining_micros
        return remaining is not None and remaining <= 0


async def limit_status(
    user_id: uuid.UUID, at: datetime | None = None, settings: LimitSettings | None = None
) -> LimitStatus:
    """The user's limit and spend in the current period (two round trips at most)."""
    now = at or datetime.now(UTC)
    settings = settings or await read_settings()
    start = period_start(settings.period, now)
    row = await raw_sql.fetchrow(_STATUS, user_id, settings.period.value, start)
    user_limit = row["user_limit"] if row is not None else None
    group_limit = row["group_limit"] if row is not None else None
    effective = resolve_limit(
        settings, user_limit, [group_limit] if group_limit is not None else []
    )
    return LimitStatus(
        source=effective.source,
        period=settings.period,
        limit_micros=effective.limit_micros,
        spent_micros=int(row["spent"]) if row is not None else 0,
        reserved_micros=int(row["reserved"]) if row is not None else 0,
        period_start=start,
        resets_at=period_end(settings.period, start),
    )
