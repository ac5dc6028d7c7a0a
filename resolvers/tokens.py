"""Bearer tokens: issuing, checking on every request, listing and revoking."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.keyset import Page, SortKey
from db.models import ApiToken, User
from db.raw_sql import fetchrow, model_from
from db.vocabulary import TOKEN_NAME_MAX, TOKEN_TOUCH_INTERVAL_S, TokenKind
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import bad_input, not_found, unauthenticated
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import require_viewer

TOKEN_PREFIX = "agq_"
# Every request runs this: one prepared statement, no query building.
TOKEN_SQL = (
    "SELECT t.id AS t_id, t.user_id AS t_user_id, t.kind AS t_kind, t.name AS t_name, "
    "t.token_hash AS t_token_hash, t.prefix AS t_prefix, t.created_at AS t_created_at, "
    "t.expires_at AS t_expires_at, t.last_used_at AS t_last_used_at, "
    "t.revoked_at AS t_revoked_at, u.id AS u_id, u.username AS u_username, u.name AS u_name, "
    "u.email AS u_email, u.password_hash AS u_password_hash, u.role AS u_role, "
    "u.disabled AS u_disabled, u.created_at AS u_created_at, u.updated_at AS u_updated_at "
    "FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id WHERE t.token_hash = $1"
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
    user: User, kind: TokenKind, name: str, expires_at: datetime | None
) -> IssuedToken:
    secret = new_secret()
    row = await ApiToken.create(
        user=user,
        kind=kind,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=expires_at,
    )
    return IssuedToken(token=row, user=user, secret=secret)


async def authenticate(raw: str) -> tuple[User, ApiToken]:
    """The user behind a presented token; UNAUTHENTICATED says why not."""
    if not raw.startswith(TOKEN_PREFIX):
        raise unauthenticated("invalid token")
    row = await fetchrow(TOKEN_SQL, hash_token(raw))
    if row is None:
        raise unauthenticated("invalid token")
    token = model_from(ApiToken, row, "t_")
    token.user = model_from(User, row, "u_")
    now = datetime.now(UTC)
    if token.revoked_at is not None:
        raise unauthenticated("token revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise unauthenticated("token expired")
    if token.user.disabled:
        raise unauthenticated("account disabled")
    stale = now - timedelta(seconds=TOKEN_TOUCH_INTERVAL_S)
    if token.last_used_at is None or token.last_used_at < stale:
        # Conditional update: concurrent requests write it once, reads stay cheap.
        await ApiToken.filter(id=token.id).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


async def create_api_token(
    ctx: RequestContext, name: str, expires_at: datetime | None
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
    return await issue_token(viewer, TokenKind.API, name, expires_at)


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
    return token


async def tokens_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, ApiToken]:
    """Node lookups: only the viewer's own tokens are visible."""
    if ctx.viewer is None:
        return {}
    rows = await ApiToken.filter(id__in=keys, user_id=ctx.viewer.id)
    return {row.id: row for row in rows}
