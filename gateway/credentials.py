"""Which agentgql token a gateway request carries, and who checks it.

SDKs put the key where their provider expects it: OpenAI's (and Claude Code with
``ANTHROPIC_AUTH_TOKEN``) as ``Authorization: Bearer``, Anthropic's as
``x-api-key``. The check itself is the server's (``resolvers.tokens``, which
the gateway may not import): it is handed in as an ``Authenticator``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers

from db.models import User


class TokenRefused(Exception):
    """The token is missing, unknown, revoked, expired, or its account disabled;
    the message says which (it never repeats the token)."""


# The agentgql token → its user, or ``TokenRefused``; gateway-only tokens pass.
Authenticator = Callable[[str], Awaitable[User]]


def presented_token(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


async def authenticate_request(headers: Headers, authenticate: Authenticator) -> User:
    raw = presented_token(headers)
    if raw is None:
        raise TokenRefused(
            "An agentgql API token is required (Authorization: Bearer <token> or x-api-key)."
        )
    return await authenticate(raw)
