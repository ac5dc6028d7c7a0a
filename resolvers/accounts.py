"""Signing up, logging in and out, and creating users from the command line."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from db.models import User
from db.vocabulary import (
    EMAIL_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    SESSION_TTL_DAYS,
    TokenKind,
    UserRole,
)
from resolvers import login_throttle
from resolvers.context import RequestContext
from resolvers.errors import bad_input, forbidden, unauthenticated
from resolvers.tokens import IssuedToken, end_sessions, issue_token

_hasher = PasswordHasher()
# Verified against when the username names no enabled account, so every refused
# login costs one argon2 verification (same parameters) and timing says nothing.
_dummy_hash: list[str] = []
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Serialises sign-ups so exactly one "first user" becomes ADMIN.
_SIGNUP_LOCK_ID = 0x61676E7431
_CLOSED = "sign-up is closed; ask an admin for an account"


def check_username(username: str) -> str:
    username = username.strip()
    if not _USERNAME.match(username):
        raise bad_input(
            "username",
            "1..64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return username


def check_password(password: str, username: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise bad_input("password", f"too weak: at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise bad_input("password", f"at most {PASSWORD_MAX} characters")
    if password.lower() == username.lower() or len(set(password)) < 4:
        raise bad_input("password", "too weak: too easy to guess")
    return password


def _optional(value: str | None, field: str, maximum: int) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > maximum:
        raise bad_input(field, f"at most {maximum} characters")
    if field == "email" and not _EMAIL.match(value):
        raise bad_input(field, "not an email address")
    return value


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow; keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _hash_to_miss() -> str:
    """A hash of a random secret nobody knows, made once with the current parameters."""
    if not _dummy_hash:
        _dummy_hash.append(await hash_password(secrets.token_urlsafe(32)))
    return _dummy_hash[0]


async def create_user(
    username: str,
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
    role: UserRole | None = None,
    only_first: bool = False,
) -> User:
    """Validate and insert; the very first user becomes ADMIN unless told otherwise.

    ``only_first`` refuses unless no user exists yet (closed sign-up), checked
    under the same lock so two racing first sign-ups cannot both succeed.
    """
    username = check_username(username)
    check_password(password, username)
    email = _optional(email, "email", EMAIL_MAX)
    name = _optional(name, "name", NAME_MAX)
    password_hash = await hash_password(password)
    try:
        async with in_transaction() as conn:
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_SIGNUP_LOCK_ID])
            if await User.filter(username__iexact=username).using_db(conn).exists():
                raise bad_input("username", "already taken")
            first = not await User.all().using_db(conn).exists()
            if only_first and not first:
                raise forbidden(_CLOSED)
            if role is None:
                role = UserRole.ADMIN if first else UserRole.MEMBER
            return await User.create(
                username=username,
                password_hash=password_hash,
                email=email,
                name=name,
                role=role,
                using_db=conn,
            )
    except IntegrityError:
        raise bad_input("username", "already taken") from None


async def start_session(ctx: RequestContext, user: User) -> IssuedToken:
    ttl = timedelta(days=SESSION_TTL_DAYS)
    issued = await issue_token(user, TokenKind.SESSION, "session", datetime.now(UTC) + ttl)
    ctx.cookie.set(issued.secret, int(ttl.total_seconds()))
    return issued


async def sign_up(
    ctx: RequestContext, username: str, password: str, email: str | None, name: str | None
) -> IssuedToken:
    if not ctx.policy.allow_signup and await User.all().exists():
        raise forbidden(_CLOSED)  # before validating: a closed door says so first
    # Validated here too, so only attempts that will cost a hash are counted.
    check_password(password, check_username(username))
    _optional(email, "email", EMAIL_MAX)
    _optional(name, "name", NAME_MAX)
    await login_throttle.claim(login_throttle.signup_keys(ctx.client_address), signup=True)
    user = await create_user(
        username, password, email=email, name=name, only_first=not ctx.policy.allow_signup
    )
    return await start_session(ctx, user)


async def login(ctx: RequestContext, username: str, password: str) -> IssuedToken:
    """Claimed against the throttle before any password work; every refusal
    costs exactly one verification.

    A disabled account is verified against its own hash (same cost) and named as
    disabled only to whoever knows its password.
    """
    username = username.strip()
    well_formed = _USERNAME.match(username) is not None
    keys = login_throttle.login_keys(username if well_formed else None, ctx.client_address)
    claimed_at = await login_throttle.claim(keys)
    user = await User.filter(username__iexact=username).first() if well_formed else None
    stored = user.password_hash if user is not None else await _hash_to_miss()
    if not await verify_password(stored, password) or user is None:
        raise unauthenticated("invalid username or password")
    await login_throttle.settle_login(keys, claimed_at)
    if user.disabled:
        raise unauthenticated("account disabled")
    await _rehash_if_outdated(user, password)
    return await start_session(ctx, user)


async def _rehash_if_outdated(user: User, password: str) -> None:
    """Keep stored hashes on the current parameters, so they cost what the dummy does."""
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save(update_fields=["password_hash"])


async def logout(ctx: RequestContext) -> bool:
    """Ends the current session; API tokens are revoked explicitly instead."""
    token, viewer = ctx.token, ctx.viewer
    if token is not None and token.kind is TokenKind.SESSION and token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        await token.save(update_fields=["revoked_at"])
        if viewer is not None:  # the token's user: its sockets close everywhere
            await end_sessions(ctx, viewer.id, token_id=token.id)
    ctx.cookie.clear()
    return True
