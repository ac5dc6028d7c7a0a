"""Users, the viewer, API tokens and admin user management."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from db import models
from db.models.api_token import TokenScope
from db.vocabulary import Permission, TokenKind, UserRole
from resolvers import permissions, tokens, usage_limits, users
from resolvers.groups import groups_of
from resolvers.pagination import PageArgs
from resolvers.prompt_config import personal_instructions
from schema.connection import Connection, connection_of
from schema.cost import viewer_cost_field
from schema.debug_settings import viewer_opt_in_field
from schema.info import Info
from schema.node import Node, global_id_field, row_is

if TYPE_CHECKING:
    from schema.group import Group
    from schema.usage_limit import UsageLimitStatus


@strawberry.type(description="A person with an account.")
class User(Node):
    id: strawberry.ID = global_id_field("User")
    username: str
    name: str | None
    email: str | None
    role: UserRole
    disabled: bool
    created_at: datetime
    is_type_of = row_is(models.User)

    @strawberry.field(
        description="The user's groups by name: for the user themself and MANAGE_USERS "
        "(empty for anyone else)."
    )
    async def groups(
        self, root: models.User, info: Info
    ) -> list[Annotated[Group, strawberry.lazy("schema.group")]]:
        return cast(list[Any], await groups_of(info.context, root))


strawberry.enum(
    TokenScope,
    name="TokenScope",
    description="What an API token opens: ALL, or GATEWAY (only the AI gateway's /v1/... "
    "routes, for a coding client; the GraphQL API refuses it).",
)


@strawberry.type(description="A bearer token. The secret is shown once, when created.")
class ApiToken(Node):
    id: strawberry.ID = global_id_field("ApiToken")
    kind: TokenKind
    scope: TokenScope
    name: str
    prefix: str = strawberry.field(
        description="The secret's first characters, to tell tokens apart."
    )
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    is_type_of = row_is(models.ApiToken)


@strawberry.type(description="The signed-in user and what they may do.")
class Viewer:
    debug_logging_opt_in = viewer_opt_in_field()
    cost = viewer_cost_field()

    @strawberry.field
    def user(self, info: Info) -> User:
        return cast(User, info.context.viewer)

    @strawberry.field(description="Everything the viewer may do.")
    def permissions(self, info: Info) -> list[Permission]:
        return permissions.permissions_of(info.context.viewer)

    @strawberry.field(description="The viewer's API tokens, newest first (sessions excluded).")
    async def api_tokens(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ApiToken]:
        page = await tokens.api_tokens(info.context, PageArgs(first, after, last, before))
        return cast(Connection[ApiToken], connection_of(page))

    @strawberry.field(description="The viewer's spend limit and spend in the current period.")
    async def usage_limit(
        self, info: Info
    ) -> Annotated[UsageLimitStatus, strawberry.lazy("schema.usage_limit")]:
        return cast("UsageLimitStatus", await usage_limits.viewer_usage_limit(info.context))

    @strawberry.field(
        description="Added to the prompt of every turn of the viewer's chats, as "
        "<user-instructions>; empty when unset."
    )
    async def personal_instructions(self, info: Info) -> str:
        return await personal_instructions(info.context)


@strawberry.input
class CreateApiTokenInput:
    name: str
    expires_at: datetime | None = None
    scope: TokenScope | None = strawberry.field(
        default=None, description="GATEWAY: usable only for the AI gateway. Default ALL."
    )


@strawberry.type
class CreateApiTokenPayload:
    token: ApiToken
    secret: str = strawberry.field(description="The bearer token. Shown only this once.")
    warnings: list[str]


@strawberry.input
class RevokeApiTokenInput:
    id: strawberry.ID


@strawberry.type
class ApiTokenPayload:
    token: ApiToken
    warnings: list[str]


@strawberry.input
class SetUserRoleInput:
    user_id: strawberry.ID
    role: UserRole


@strawberry.input
class SetUserDisabledInput:
    user_id: strawberry.ID
    disabled: bool


@strawberry.type
class UserPayload:
    user: User
    warnings: list[str]


@strawberry.type
class UserQueries:
    @strawberry.field(description="The signed-in user; null when signed out, never an error.")
    def viewer(self, info: Info) -> Viewer | None:
        ctx = info.context
        if ctx.auth_error is not None:
            raise ctx.auth_error
        return Viewer() if ctx.viewer is not None else None

    @strawberry.field(description="Every account, oldest first. Needs MANAGE_USERS.")
    async def users(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[User]:
        page = await users.users(info.context, PageArgs(first, after, last, before))
        return cast(Connection[User], connection_of(page))


def _row(value: Any) -> Any:
    return value


@strawberry.type
class UserMutations:
    @strawberry.mutation(description="Create an API token; its secret is returned only here.")
    async def create_api_token(
        self, info: Info, input: CreateApiTokenInput
    ) -> CreateApiTokenPayload:
        issued = await tokens.create_api_token(
            info.context, input.name, input.expires_at, input.scope or TokenScope.ALL
        )
        return CreateApiTokenPayload(token=_row(issued.token), secret=issued.secret, warnings=[])

    @strawberry.mutation(description="Revoke one of the viewer's API tokens.")
    async def revoke_api_token(self, info: Info, input: RevokeApiTokenInput) -> ApiTokenPayload:
        token = await tokens.revoke_api_token(info.context, input.id)
        return ApiTokenPayload(token=_row(token), warnings=[])

    @strawberry.mutation(description="Change a user's role. Needs MANAGE_USERS.")
    async def set_user_role(self, info: Info, input: SetUserRoleInput) -> UserPayload:
        user = await users.set_user_role(info.context, input.user_id, input.role)
        return UserPayload(user=_row(user), warnings=[])

    @strawberry.mutation(
        description="Disable (ending all their sessions) or re-enable a user. Needs MANAGE_USERS."
    )
    async def set_user_disabled(self, info: Info, input: SetUserDisabledInput) -> UserPayload:
        user = await users.set_user_disabled(info.context, input.user_id, input.disabled)
        return UserPayload(user=_row(user), warnings=[])
