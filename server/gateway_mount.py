"""The AI gateway as this server mounts it: its routes, with the token check
of the GraphQL API (gateway-only tokens accepted here, and only here)."""

from __future__ import annotations

from db.models import User
from gateway.credentials import TokenRefused
from gateway.proxy import Gateway
from resolvers.errors import ApiError
from resolvers.tokens import authenticate


async def gateway_user(raw: str) -> User:
    try:
        user, _ = await authenticate(raw, gateway=True)
    except ApiError as exc:
        raise TokenRefused(f"The agentgql token was refused: {exc.message}.") from None
    return user


def make_gateway() -> Gateway:
    return Gateway(gateway_user)
