"""Finding the bearer token on a request, wherever the client could put it.

Order: ``Authorization: Bearer``, then the ``session_token`` query parameter
(WebSockets from embedded webviews that cannot set headers or cookies, and file
downloads for ``<img src>``), then the session cookie. On WebSockets the
``connection_init`` payload's ``authToken`` takes precedence (see ``server.graphql_view``).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from db.models import ApiToken, User
from resolvers.errors import ApiError
from resolvers.tokens import authenticate

COOKIE_NAME = "agentgql_session"
QUERY_PARAM = "session_token"


@dataclass
class Credentials:
    token: str | None
    from_cookie: bool


def credentials_of(conn: HTTPConnection, *, query_ok: bool = False) -> Credentials:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credentials(value.strip(), from_cookie=False)
    if (query_ok or conn.scope["type"] == "websocket") and conn.query_params.get(QUERY_PARAM):
        return Credentials(conn.query_params[QUERY_PARAM], from_cookie=False)
    cookie = conn.cookies.get(COOKIE_NAME)
    if cookie:
        return Credentials(cookie, from_cookie=True)
    return Credentials(None, from_cookie=False)


@dataclass
class AuthState:
    viewer: User | None = None
    token: ApiToken | None = None
    error: ApiError | None = None


async def resolve_token(raw: str | None) -> AuthState:
    if not raw:
        return AuthState()
    try:
        user, token = await authenticate(raw)
    except ApiError as exc:
        return AuthState(error=exc)
    return AuthState(viewer=user, token=token)
