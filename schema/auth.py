"""Signing up, logging in and out."""

from __future__ import annotations

from typing import cast

import strawberry

from resolvers import accounts
from schema.info import Info
from schema.user import User


@strawberry.input
class SignUpInput:
    username: str
    password: str
    email: str | None = None
    name: str | None = None


@strawberry.input
class LoginInput:
    username: str
    password: str


@strawberry.type
class AuthPayload:
    token: str = strawberry.field(description="Bearer token; also set as an HttpOnly cookie.")
    user: User


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        description="Create an account and sign in. The first account becomes ADMIN; "
        "later ones only when sign-up is open."
    )
    async def sign_up(self, info: Info, input: SignUpInput) -> AuthPayload:
        issued = await accounts.sign_up(
            info.context, input.username, input.password, input.email, input.name
        )
        return AuthPayload(token=issued.secret, user=cast(User, issued.user))

    @strawberry.mutation(description="Sign in; returns a session token and sets the cookie.")
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        issued = await accounts.login(info.context, input.username, input.password)
        return AuthPayload(token=issued.secret, user=cast(User, issued.user))

    @strawberry.mutation(description="End the current session and clear the cookie.")
    async def logout(self, info: Info) -> bool:
        return await accounts.logout(info.context)
