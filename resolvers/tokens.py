"""Bearer tokens: issuing, checking on every request, listing and revoking."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.keyset import Page, SortKey
from db.models import ApiToken, TokenScope, User
from db.raw_sql import fetchrow
from db.text_rules import forbidden_character
from db.tortoise_compat import model_from_values
from db.vocabulary import TOKEN_NAME_MAX, TOKEN_TOUCH_INTERVAL_S, TokenKind
from events.payloads import SessionEnd
from events.sessions import announce_session_end
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import bad_input, not_found, unauthenticated
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import require_viewer
from resolvers.token_cache import TOKENS

TOKEN_PREFIX = "agq_"
# The token's columns, then its user's, read by position (aliases keep names apart).
_TOKEN_COLUMNS = (
    "id", "user_id", "kind", "name", "token_hash", "prefix", "created_at", "expires_at",
    "last_used_at", "revoked_at", "scope",
)  # fmt: skip
_USER_COLUMNS = (
    "id", "username", "name", "email", "password_hash", "role", "disabled", "created_at",
    "updated_at", "spend_limit_micros", "granted_permissions",
)  # fmt: skip
# Every request runs this: one prepared statement, no query building.
TOKEN_SQL = (
    "SELECT "
    + ", ".join(
        [f"t.{c} AS t_{c}" for c in _TOKEN_COLUMNS] + [f"u.{c} AS u_{c}" for c in _USER_COLUMNS]
    )
    + " FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id WHERE t.token_hash = $1"
)
_SPLIT = len(_TOKEN_COLUMNS)
_EXPIRES, _REVOKED = _TOKEN_COLUMNS.index("expires_at"), _TOKEN_COLUMNS.index("revoked_at")
_DISABLED = _SPLIT + _USER_COLUMNS.index("disabled")
_SCOPE = _TOKEN_COLUMNS.index("scope")
GATEWAY_ONLY_MESSAGE = (
    "this token is scoped to the AI gateway (/v1/...) only; "
    "the GraphQL API needs a session or an API token without that scope"
)
_ORDER = (SortKey("created_at", descending=True, kind="datetime"), SortKey("id", kind="uuid"))


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass
class IssuedToken:
    token: ApiToken
    user: User
    secret: str


async def issue_token(
    user: User,
    kind: TokenKind,
    name: str,
    expires_at: datetime | None,
    scope: TokenScope = TokenScope.ALL,
) -> IssuedToken:
    secret = new_secret()
    row = await ApiToken.create(
        user=user,
        kind=kind,
        scope=scope,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=expires_at,
    )
    return IssuedToken(token=row, user=user, secret=secret)


async def authenticate(raw: str, *, gateway: bool = False) -> tuple[User, ApiToken]:
    """The user behind a presented token; UNAUTHENTICATED says why not.
    Gateway-only tokens pass only for the AI gateway (``gateway``)."""
    # A control character or lone surrogate (a WebSocket's JSON can carry one)
    # is no token of ours: refused like any other, before hashing could fail.
    if not raw.startswith(TOKEN_PREFIX) or forbidden_character(raw) is not None:
        raise unauthenticated("invalid token")
    token_hash = hash_token(raw)
    cached = TOKENS.get(token_hash)
    if cached is not None:
        user, token = cached
        if token.scope == TokenScope.GATEWAY and not gateway:
            raise unauthenticated(GATEWAY_ONLY_MESSAGE)
        await _touch(token, datetime.now(UTC))
        return user, token
    generation = TOKENS.generation
    user, token = await authenticate_hash(token_hash, gateway=gateway)
    TOKENS.put(token_hash, user, token, generation)
    return user, token


async def authenticate_hash(token_hash: str, *, gateway: bool = False) -> tuple[User, ApiToken]:
    """``authenticate`` by the stored hash: an open WebSocket checks again with it
    before each operation (it keeps the token row, not the secret)."""
    row = await fetchrow(TOKEN_SQL, token_hash)
    if row is None:
        raise unauthenticated("invalid token")
    # Checked on the record (the same instants the models would hold), so a
    # refused token costs no model; accepted ones are built straight from it.
    now = datetime.now(UTC)
    if row[_REVOKED] is not None:
        raise unauthenticated("token revoked")
    expires_at = row[_EXPIRES]
    if expires_at is not None and expires_at <= now:
        raise unauthenticated("token expired")
    if row[_DISABLED]:
        raise unauthenticated("account disabled")
    if row[_SCOPE] == TokenScope.GATEWAY.value and not gateway:
        raise unauthenticated(GATEWAY_ONLY_MESSAGE)
    token = model_from_values(ApiToken, dict(zip(_TOKEN_COLUMNS, row[:_SPLIT], strict=True)))
    token.user = model_from_values(User, dict(zip(_USER_COLUMNS, row[_SPLIT:], strict=True)))
    await _touch(token, now)
    return token.user, token


async def _touch(token: ApiToken, now: datetime) -> None:
    """``last_used_at``, written at most once per interval (reads stay cheap)."""
    stale = now - timedelta(seconds=TOKEN_TOUCH_INTERVAL_S)
    if token.last_used_at is None or token.last_used_at < stale:
        token.last_used_at = now  # first: concurrent hits of a cached token write once
        await ApiToken.filter(id=token.id).update(last_used_at=now)


async def create_api_token(
    ctx: RequestContext,
    name: str,
    expires_at: datetime | None,
    scope: TokenScope = TokenScope.ALL,
) -> IssuedToken:
    viewer = require_viewer(ctx)
    name = name.strip()
    if not name or len(name) > TOKEN_NAME_MAX:
        raise bad_input("name", f"must be 1..{TOKEN_NAME_MAX} characters")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise bad_input("expiresAt", "must carry a time zone")
        if expires_at <= datetime.now(UTC):
            raise bad_input("expiresAt", "must be in the future")
    return await issue_token(viewer, TokenKind.API, name, expires_at, scope)


async def api_tokens(ctx: RequestContext, args: PageArgs) -> Page[ApiToken]:
    viewer = require_viewer(ctx)
    query = ApiToken.filter(user_id=viewer.id, kind=TokenKind.API, revoked_at=None)
    return await paginate(query, _ORDER, args)


async def revoke_api_token(ctx: RequestContext, token_id: str) -> ApiToken:
    viewer = require_viewer(ctx)
    key = global_id.decode_uuid(token_id, "ApiToken")
    token = await ApiToken.filter(id=key, user_id=viewer.id).first()
    if token is None:
        raise not_found("token")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        await token.save(update_fields=["revoked_at"])
    await end_sessions(ctx, viewer.id, token_id=token.id)
    return token


async def end_sessions(
    ctx: RequestContext,
    user_id: uuid.UUID,
    *,
    token_id: uuid.UUID | None = None,
    role_changed: bool = False,
) -> None:
    """Tell every replica to close the sockets of this token (or of every token of
    the user); call it after the write has committed."""
    TOKENS.evict(user_id, token_id)  # this process at once; the others when announced
    if ctx.events is not None:
        end = SessionEnd(user_id=user_id, token_id=token_id, role_changed=role_changed)
        await announce_session_end(ctx.events.hub, end)


async def tokens_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, ApiToken]:
    """Node lookups: only the viewer's own tokens are visible."""
    if ctx.viewer is None:
        return {}
    rows = await ApiToken.filter(id__in=keys, user_id=ctx.viewer.id)
    return {row.id: row for row in rows}
