"""Groups: the type, the ``groups`` query and the mutations that manage them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import strawberry

from db import models
from db.vocabulary import Permission
from resolvers import groups
from resolvers.pagination import PageArgs
from schema.connection import Connection, connection_of
from schema.info import Info
from schema.node import Node, global_id_field, row_is
from schema.provider import given
from schema.user import User

if TYPE_CHECKING:
    BigInt = int  # mypy cannot use a Strawberry scalar as a type; at run time it is one
else:
    from schema.scalars import BigInt


def _usage_limit(root: models.Group) -> int | None:
    return cast(int | None, root.spend_limit_micros)


def _permissions(root: models.Group) -> list[Permission]:
    return groups.group_permissions(root)


@strawberry.type(
    description="A named set of users: they share a spend-limit override and gain the "
    "group's permissions. Managed by users with MANAGE_USERS."
)
class Group(Node):
    id: strawberry.ID = global_id_field("Group")
    name: str = strawberry.field(description="Unique.")
    display_name: str | None
    created_at: datetime
    usage_limit_micros: BigInt | None = strawberry.field(
        resolver=_usage_limit,
        description="Null: no group override (set with setGroupUsageLimit).",
    )
    permissions: list[Permission] = strawberry.field(
        resolver=_permissions,
        description="What members gain on top of their role (read-only views only).",
    )
    is_type_of = row_is(models.Group)

    @strawberry.field(description="The members, oldest account first. Needs MANAGE_USERS.")
    async def members(
        self,
        root: models.Group,
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[User]:
        page = await groups.members(info.context, root, PageArgs(first=first, after=after))
        return cast(Connection[User], connection_of(page))

    @strawberry.field(description="How many users are members. Needs MANAGE_USERS.")
    async def member_count(self, root: models.Group, info: Info) -> int:
        return await groups.member_count(info.context, root)


@strawberry.input
class CreateGroupInput:
    name: str = strawberry.field(description="Unique, 1..100 characters.")
    display_name: str | None = strawberry.UNSET
    permissions: list[Permission] | None = strawberry.field(
        default=strawberry.UNSET,
        description="VIEW_ALL_COSTS, VIEW_INSIGHTS and VIEW_REQUEST_LOGS only.",
    )


@strawberry.input
class UpdateGroupInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    display_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="Null or blank clears it."
    )
    permissions: list[Permission] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the list; members gain it at once."
    )


@strawberry.input
class DeleteGroupInput:
    id: strawberry.ID


@strawberry.input
class GroupMembersInput:
    group_id: strawberry.ID
    user_ids: list[strawberry.ID] = strawberry.field(description="At most 100 per call.")


@strawberry.type
class GroupPayload:
    group: Group
    warnings: list[str]


@strawberry.type
class DeleteGroupPayload:
    deleted_id: strawberry.ID
    warnings: list[str]


_FIELDS = ("name", "display_name", "permissions")


def _row(value: Any) -> Any:
    return value


@strawberry.type
class GroupQueries:
    @strawberry.field(description="Every group by name. Needs MANAGE_USERS.")
    async def groups(self, info: Info) -> list[Group]:
        return cast(list[Group], await groups.groups(info.context))


@strawberry.type
class GroupMutations:
    @strawberry.mutation(description="Create a group. Needs MANAGE_USERS.")
    async def create_group(self, info: Info, input: CreateGroupInput) -> GroupPayload:
        group = await groups.create_group(info.context, given(input, _FIELDS))
        return GroupPayload(group=_row(group), warnings=[])

    @strawberry.mutation(
        description="Rename a group or change its permissions. Needs MANAGE_USERS."
    )
    async def update_group(self, info: Info, input: UpdateGroupInput) -> GroupPayload:
        group = await groups.update_group(info.context, input.id, given(input, _FIELDS))
        return GroupPayload(group=_row(group), warnings=[])

    @strawberry.mutation(
        description="Delete a group; its members lose what it granted. Needs MANAGE_USERS."
    )
    async def delete_group(self, info: Info, input: DeleteGroupInput) -> DeleteGroupPayload:
        await groups.delete_group(info.context, input.id)
        return DeleteGroupPayload(deleted_id=input.id, warnings=[])

    @strawberry.mutation(
        description="Add users to a group; members already in it are left as they are. "
        "Needs MANAGE_USERS."
    )
    async def add_group_members(self, info: Info, input: GroupMembersInput) -> GroupPayload:
        group = await groups.add_group_members(info.context, input.group_id, input.user_ids)
        return GroupPayload(group=_row(group), warnings=[])

    @strawberry.mutation(
        description="Remove users from a group; users not in it are ignored. Needs MANAGE_USERS."
    )
    async def remove_group_members(self, info: Info, input: GroupMembersInput) -> GroupPayload:
        group = await groups.remove_group_members(info.context, input.group_id, input.user_ids)
        return GroupPayload(group=_row(group), warnings=[])
