"""Counting sign-in attempts in ``login_throttles``, so every replica sees one count.

An attempt is claimed *before* the password is checked: one transaction upserts
each key (bumping the count and setting ``blocked_until`` in the same statement)
unless a key is blocked, in which case nothing is counted. Claiming first, under
the rows' locks, is what stops a burst of concurrent guesses from all passing a
read-only check before the first failure lands. An attempt that proves the
password is handed back afterwards.

A count whose last attempt is older than the forget window starts again from
one. Each claim also deletes a batch of forgotten rows, so the table holds about
an hour of attempts however many usernames an attacker makes up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from db import raw_sql
from db.models.login_throttle import ThrottleKind

# Forgotten rows deleted per claim: far more than a claim adds.
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


def _blocked_until(count: str) -> str:
    # Backoff.delay_s in SQL: the count-th attempt blocks from the free-th on.
    return (
        f"CASE WHEN {count} >= $5::int THEN $3::timestamptz + make_interval(secs => "
        f"least($6::float8 * power(2, least({count} - $5::int, {_MAX_DOUBLINGS})), $7::float8))"
        " END"
    )


_NEXT = "CASE WHEN t.updated_at >= $4::timestamptz THEN t.failures + 1 ELSE 1 END"
# $1 kind, $2 key, $3 now, $4 forget-before, $5 free, $6 base_s, $7 max_s.
# A blocked row is left alone and returns nothing.
_CLAIM = (
    "INSERT INTO login_throttles AS t (kind, key, failures, blocked_until, updated_at)"
    f" VALUES ($1, $2, 1, {_blocked_until('1')}, $3)"
    f" ON CONFLICT (kind, key) DO UPDATE SET failures = {_NEXT},"
    f" blocked_until = {_blocked_until(_NEXT)}, updated_at = $3"
    " WHERE t.blocked_until IS NULL OR t.blocked_until <= $3::timestamptz"
    " RETURNING t.failures"
)
_BLOCK_OF = "SELECT blocked_until FROM login_throttles WHERE kind = $1 AND key = $2"
_PURGE = (
    "DELETE FROM login_throttles WHERE id IN (SELECT id FROM login_throttles"
    " WHERE updated_at < $1 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
)
_CLEAR = "DELETE FROM login_throttles WHERE kind = $1 AND key = $2"
# Undo one claim made at $3; the block it set goes too unless someone counted since.
_GIVE_BACK = (
    "UPDATE login_throttles SET failures = greatest(failures - 1, 0),"
    " blocked_until = CASE WHEN updated_at = $3 THEN NULL ELSE blocked_until END"
    " WHERE kind = $1 AND key = $2"
)


class _Blocked(Exception):
    """Rolls the claim's transaction back, carrying the block that refused it."""

    def __init__(self, until: datetime) -> None:
        self.until = until


async def claim(keys: Sequence[ThrottleKey], now: datetime, forget: timedelta) -> datetime | None:
    """Count one attempt against every key; if any is blocked, count nothing and
    return when its block ends."""
    if not keys:
        return None
    # A fixed lock order, so two replicas claiming the same keys never deadlock.
    ordered = sorted(keys, key=lambda k: (k.kind.value, k.key))
    forget_before = now - forget
    async with raw_sql.pool().acquire() as conn:
        try:
            async with conn.transaction():
                for k in ordered:
                    b = k.backoff
                    args = (k.kind.value, k.key, now, forget_before, b.free, b.base_s, b.max_s)
                    if await conn.fetchval(_CLAIM, *args) is None:
                        until: datetime = await conn.fetchval(_BLOCK_OF, k.kind.value, k.key)
                        raise _Blocked(until)
        except _Blocked as blocked:
            return blocked.until
        await conn.execute(_PURGE, forget_before, PURGE_BATCH)
    return None


async def clear(key: ThrottleKey) -> None:
    """Forget a key's count entirely."""
    await raw_sql.pool().execute(_CLEAR, key.kind.value, key.key)


async def give_back(key: ThrottleKey, claimed_at: datetime) -> None:
    """Return the attempt claimed at ``claimed_at`` (it turned out not to be a guess)."""
    await raw_sql.pool().execute(_GIVE_BACK, key.kind.value, key.key, claimed_at)
