"""Login and sign-up throttling: which keys an attempt counts against, and the policy.

- A username (lower-cased) gets 5 free failed logins; each further failure blocks
  it for 1 s, doubling up to 15 min. Per username so a botnet cannot guess one
  account's password from many addresses.
- A client address (IPv6: its /64, which one host usually owns) gets 20, then
  the same back-off: one address spraying a password across many usernames.
- Sign-up: 10 attempts per address (those that pass validation, so typos cost
  nothing), then the same back-off; each one costs an argon2 hash.
- A key quiet for an hour is forgotten. A successful login clears its username
  (not its address: a valid account must not reset an address's count).

Blocks are checked before any password work, so a refused attempt costs one
indexed read and no argon2. The username key is counted whether or not the
account exists, so a block says nothing about existence either.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from db import login_throttle
from db.login_throttle import Backoff, ThrottleKey
from db.models.login_throttle import ThrottleKind
from db.vocabulary import ErrorCode
from resolvers.errors import ApiError

USERNAME_BACKOFF = Backoff(free=5, base_s=1.0, max_s=900.0)
ADDRESS_BACKOFF = Backoff(free=20, base_s=1.0, max_s=900.0)
SIGNUP_BACKOFF = Backoff(free=10, base_s=1.0, max_s=900.0)
# Longer than any block, so a row is never forgotten while it still blocks.
FORGET_AFTER = timedelta(hours=1)
_KEY_MAX = 100
_LOGIN_REFUSED = "too many failed sign-in attempts; try again later"
_SIGNUP_REFUSED = "too many sign-up attempts from this address; try again later"


def _wall_clock() -> datetime:
    return datetime.now(UTC)


# Module-level so tests can pin time instead of sleeping through a block.
clock: Callable[[], datetime] = _wall_clock


def address_key(host: str | None) -> str | None:
    """The throttling key for a client address: IPv6 by /64, anything else as is."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:_KEY_MAX]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def username_key(username: str) -> ThrottleKey:
    return ThrottleKey(ThrottleKind.USERNAME, username.strip().lower(), USERNAME_BACKOFF)


def login_keys(username: str | None, host: str | None) -> list[ThrottleKey]:
    """``username`` is None when it cannot name any account (malformed)."""
    keys = [username_key(username)] if username is not None else []
    address = address_key(host)
    if address is not None:
        keys.append(ThrottleKey(ThrottleKind.ADDRESS, address, ADDRESS_BACKOFF))
    return keys


def signup_keys(host: str | None) -> list[ThrottleKey]:
    address = address_key(host)
    return [] if address is None else [ThrottleKey(ThrottleKind.SIGNUP, address, SIGNUP_BACKOFF)]


async def ensure_open(keys: list[ThrottleKey], *, signup: bool = False) -> None:
    """RATE_LIMITED with ``retryAfterSeconds`` while any of ``keys`` is blocked."""
    now = clock()
    until = await login_throttle.blocked_until(keys, now)
    if until is None:
        return
    retry_after = max(1, math.ceil((until - now).total_seconds()))
    message = _SIGNUP_REFUSED if signup else _LOGIN_REFUSED
    raise ApiError(ErrorCode.RATE_LIMITED, message, retryAfterSeconds=retry_after)


async def count_attempt(keys: list[ThrottleKey]) -> None:
    await login_throttle.record_attempt(keys, clock(), FORGET_AFTER)


async def clear_username(username: str) -> None:
    await login_throttle.clear(username_key(username))
