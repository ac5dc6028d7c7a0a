"""Counting failed sign-ins in ``login_throttles``, so every replica sees one count.

One upsert per key and attempt bumps the count and sets ``blocked_until`` in the
same statement (no read-modify-write race between replicas). A count whose last
attempt is older than the forget window starts again from one. Each write also
deletes a batch of forgotten rows, so the table holds about an hour of failures
however many usernames an attacker makes up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from db import raw_sql
from db.models.login_throttle import ThrottleKind

# Forgotten rows deleted per recorded attempt: far more than an attempt adds.
PURGE_BATCH = 100
# 2**30 s is beyond any sensible ceiling; the cap only keeps power() finite.
_MAX_DOUBLINGS = 30


@dataclass(frozen=True)
class Backoff:
    """``free`` attempts pass; the next one waits ``base_s``, doubling up to ``max_s``."""

    free: int
    base_s: float = 1.0
    max_s: float = 900.0

    def delay_s(self, count: int) -> float:
        """How long the ``count``-th counted attempt blocks the key (0: not at all)."""
        if count < self.free:
            return 0.0
        return min(self.base_s * 2.0 ** min(count - self.free, _MAX_DOUBLINGS), self.max_s)


@dataclass(frozen=True)
class ThrottleKey:
    kind: ThrottleKind
    key: str
    backoff: Backoff


def _count_after(prior_fresh: str) -> str:
    return f"CASE WHEN {prior_fresh} THEN t.failures + 1 ELSE 1 END"


def _blocked_until(count: str) -> str:
    # Mirrors Backoff.delay_s: the count-th attempt blocks from the free-th on.
    return (
        f"CASE WHEN {count} >= $5::int THEN $3::timestamptz + make_interval(secs => "
        f"least($6::float8 * power(2, least({count} - $5::int, {_MAX_DOUBLINGS})), $7::float8))"
        " END"
    )


_NEXT = _count_after("t.updated_at >= $4::timestamptz")
# $1 kind, $2 key, $3 now, $4 forget-before, $5 free, $6 base_s, $7 max_s
_RECORD = (
    "INSERT INTO login_throttles AS t (kind, key, failures, blocked_until, updated_at)"
    f" VALUES ($1, $2, 1, {_blocked_until('1')}, $3)"
    f" ON CONFLICT (kind, key) DO UPDATE SET failures = {_NEXT},"
    f" blocked_until = {_blocked_until(_NEXT)}, updated_at = $3"
)
_PURGE = (
    "DELETE FROM login_throttles WHERE id IN (SELECT id FROM login_throttles"
    " WHERE updated_at < $1 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
)
_BLOCKED = (
    "SELECT max(blocked_until) FROM login_throttles WHERE blocked_until > $3::timestamptz"
    " AND (kind, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
_CLEAR = "DELETE FROM login_throttles WHERE kind = $1 AND key = $2"


async def blocked_until(keys: Sequence[ThrottleKey], now: datetime) -> datetime | None:
    """The latest block among ``keys`` still in force at ``now``, if any."""
    if not keys:
        return None
    kinds = [k.kind.value for k in keys]
    names = [k.key for k in keys]
    until: datetime | None = await raw_sql.pool().fetchval(_BLOCKED, kinds, names, now)
    return until


async def record_attempt(keys: Sequence[ThrottleKey], now: datetime, forget: timedelta) -> None:
    """Count one attempt against every key, then purge a batch of forgotten rows."""
    if not keys:
        return
    # A fixed lock order, so two replicas counting the same keys never deadlock.
    ordered = sorted(keys, key=lambda k: (k.kind.value, k.key))
    forget_before = now - forget
    rows: list[tuple[Any, ...]] = [
        (k.kind.value, k.key, now, forget_before, k.backoff.free, k.backoff.base_s, k.backoff.max_s)
        for k in ordered
    ]
    async with raw_sql.pool().acquire() as conn:
        await conn.executemany(_RECORD, rows)
        await conn.execute(_PURGE, forget_before, PURGE_BATCH)


async def clear(key: ThrottleKey) -> None:
    """Forget a key's count (a successful login clears its username)."""
    await raw_sql.pool().execute(_CLEAR, key.kind.value, key.key)
