"""Login and sign-up throttling: which keys an attempt counts against, and the policy.

- A username (lower-cased) gets 5 free failed logins; each further failure blocks
  it for 1 s, doubling up to 15 min. Per username so a botnet cannot guess one
  account's password from many addresses.
- A client address (IPv6: its /64, which one host usually owns) gets 20, then
  the same back-off: one address spraying a password across many usernames.
- Sign-up: 10 attempts per address (those that pass validation, so typos cost
  nothing), then the same back-off; each one costs an argon2 hash.
- A key quiet for an hour is forgotten. A successful login clears its username;
  its address only gets that one attempt back (a valid account of one's own must
  not reset an address's count).

Every attempt is claimed before any password work (atomically, so a burst of
concurrent guesses gets no more than the allowance), and a refused one costs no
argon2. An attempt that proves the password is handed back. The username key is
counted whether or not the account exists, so a block says nothing about
existence either.
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


async def claim(keys: list[ThrottleKey], *, signup: bool = False) -> datetime:
    """Count this attempt, or refuse it (RATE_LIMITED, ``retryAfterSeconds``) while
    any key is blocked. Returns the claim's time, for ``settle_login``."""
    now = clock()
    until = await login_throttle.claim(keys, now, FORGET_AFTER)
    if until is None:
        return now
    retry_after = max(1, math.ceil((until - now).total_seconds()))
    message = _SIGNUP_REFUSED if signup else _LOGIN_REFUSED
    raise ApiError(ErrorCode.RATE_LIMITED, message, retryAfterSeconds=retry_after)


async def settle_login(keys: list[ThrottleKey], claimed_at: datetime) -> None:
    """The password was right: clear the username, give the address its attempt back."""
    for key in keys:
        if key.kind is ThrottleKind.USERNAME:
            await login_throttle.clear(key)
        else:
            await login_throttle.give_back(key, claimed_at)
