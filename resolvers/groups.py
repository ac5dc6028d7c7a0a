"""Groups: named sets of users that share a spend-limit override and may grant
their members read-only permissions. Managing them needs MANAGE_USERS.

Every write runs in one transaction with the recompute of the members' granted
permissions (``db.groups``), and sockets of members whose permissions changed are
told after the commit (a socket reads its viewer once, like after a role change).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from db import groups as membership
from db.keyset import Page, SortKey
from db.models import Group, GroupMember, User
from db.vocabulary import GRANTABLE_PERMISSIONS, GROUP_NAME_MAX, NAME_MAX, ErrorCode, Permission
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, conflict, not_found
from resolvers.loaders import Loaders, SafeLoader
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import grantable, has_permission, require_permission
from resolvers.tokens import end_sessions

# Users added or removed in one call: a bounded statement and a bounded error.
MEMBERS_PER_CALL_MAX = 100
_MEMBER_ORDER = (SortKey("created_at", kind="datetime"), SortKey("id", kind="uuid"))
_GRANTABLE_NAMES = ", ".join(sorted(p.name for p in GRANTABLE_PERMISSIONS))


# ---------------------------------------------------------------- input


def group_key(gid: str, field: str = "id") -> uuid.UUID:
    return global_id.decode_uuid(gid, "Group", field=field)


def _name(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(name) <= GROUP_NAME_MAX:
        raise bad_input("name", f"must be 1..{GROUP_NAME_MAX} characters")
    return name


def _display_name(value: str | None) -> str | None:
    """Blank clears it."""
    text = (value or "").strip()
    if len(text) > NAME_MAX:
        raise bad_input("displayName", f"must be at most {NAME_MAX} characters")
    return text or None


def _permissions(values: Any) -> list[str]:
    """The stored form: distinct grantable values, sorted."""
    if values is None:
        raise bad_input("permissions", "must be a list (empty grants nothing)")
    chosen = {Permission(v) for v in values}
    refused = sorted(p.name for p in chosen - GRANTABLE_PERMISSIONS)
    if refused:
        raise bad_input(
            "permissions",
            f"{', '.join(refused)} cannot be granted by a group (grantable: {_GRANTABLE_NAMES})",
            permissions=refused,
        )
    return sorted(p.value for p in chosen)


def _user_keys(gids: Sequence[str]) -> dict[uuid.UUID, str]:
    """Distinct user ids in the order given, each with the id the client sent."""
    if len(gids) > MEMBERS_PER_CALL_MAX:
        raise bad_input(
            "userIds", f"at most {MEMBERS_PER_CALL_MAX} users per call", max=MEMBERS_PER_CALL_MAX
        )
    keys: dict[uuid.UUID, str] = {}
    for gid in gids:
        keys.setdefault(global_id.decode_uuid(gid, "User", field="userIds"), gid)
    return keys


def _duplicate(name: str) -> ApiError:
    return conflict(f"a group named {name!r} already exists", field="name")


# ---------------------------------------------------------------- reads


async def groups(ctx: RequestContext) -> list[Group]:
    """Every group by name, each with its member count (one query)."""
    require_permission(ctx, Permission.MANAGE_USERS)
    return await Group.all().annotate(member_count=Count("members")).order_by("name", "id")


async def member_count(ctx: RequestContext, group: Group) -> int:
    require_permission(ctx, Permission.MANAGE_USERS)
    counted = getattr(group, "member_count", None)  # set by ``groups``
    if isinstance(counted, int):
        return counted
    return await User.filter(group_memberships__group_id=group.id).count()


async def members(ctx: RequestContext, group: Group, args: PageArgs) -> Page[User]:
    """A group's members, oldest account first (as ``users``)."""
    require_permission(ctx, Permission.MANAGE_USERS)
    query = User.filter(group_memberships__group_id=group.id)
    return await paginate(query, _MEMBER_ORDER, args)


def group_permissions(group: Group) -> list[Permission]:
    stored = group.permissions if isinstance(group.permissions, list) else []
    held = grantable(stored)
    return [p for p in Permission if p in held]


async def groups_of(ctx: RequestContext, user: User) -> list[Group]:
    """``User.groups``: the user themself and user managers see them; anyone else
    sees an empty list (another user's memberships are not theirs to read)."""
    viewer = ctx.viewer
    if viewer is None or ctx.auth_error is not None:
        return []
    if viewer.id != user.id and not has_permission(ctx, Permission.MANAGE_USERS):
        return []
    loader = _groups_of_loaders.get(ctx.loaders)
    if loader is None:
        loader = _groups_of_loaders[ctx.loaders] = SafeLoader(_groups_of_users)
    found: list[Group] = await loader.load(user.id)
    return found


# Per operation: ``User.groups`` of a whole users page (with the groups' member
# counts) is two statements, not two per user.
_groups_of_loaders: WeakKeyDictionary[Loaders, SafeLoader] = WeakKeyDictionary()


async def _groups_of_users(keys: list[uuid.UUID]) -> list[list[Group]]:
    """Each user's groups by name, each with its member count."""
    links = await GroupMember.filter(user_id__in=keys).values_list("user_id", "group_id")
    group_ids = {group_id for _, group_id in links}
    rows = (
        await Group.filter(id__in=group_ids).annotate(member_count=Count("members"))
        if group_ids
        else []
    )
    by_id = {row.id: row for row in rows}
    found: dict[uuid.UUID, list[Group]] = {key: [] for key in keys}
    for user_id, group_id in links:
        if group_id in by_id:
            found[user_id].append(by_id[group_id])
    for groups_ in found.values():
        groups_.sort(key=lambda g: (g.name, str(g.id)))
    return [found[key] for key in keys]


async def groups_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, Group]:
    """Node lookups: user managers see every group, others only their own."""
    viewer = ctx.viewer
    if viewer is None or ctx.auth_error is not None:
        return {}
    query = Group.filter(id__in=keys)
    if not has_permission(ctx, Permission.MANAGE_USERS):
        query = query.filter(members__user_id=viewer.id)
    return {row.id: row for row in await query}


# ---------------------------------------------------------------- writes


async def _announce(ctx: RequestContext, changed: list[uuid.UUID]) -> None:
    """After the commit: the sockets of users whose permissions changed reconnect,
    so a subscription never runs on permissions read before the change."""
    for user_id in changed:
        await end_sessions(ctx, user_id, role_changed=True)


async def create_group(ctx: RequestContext, values: dict[str, Any]) -> Group:
    """``values``: name; optionally display_name, permissions."""
    require_permission(ctx, Permission.MANAGE_USERS)
    name = _name(values.get("name"))
    display_name = _display_name(values.get("display_name"))
    permissions = _permissions(values.get("permissions", []))
    if await Group.filter(name=name).exists():
        raise _duplicate(name)
    try:
        return await Group.create(name=name, display_name=display_name, permissions=permissions)
    except IntegrityError:  # lost a race for the name
        raise _duplicate(name) from None


async def update_group(ctx: RequestContext, gid: str, values: dict[str, Any]) -> Group:
    """Only the keys present change; new permissions reach every member at once."""
    require_permission(ctx, Permission.MANAGE_USERS)
    key = group_key(gid)
    changes: dict[str, Any] = {}
    if "name" in values:
        changes["name"] = _name(values["name"])
    if "display_name" in values:
        changes["display_name"] = _display_name(values["display_name"])
    if "permissions" in values:
        changes["permissions"] = _permissions(values["permissions"])
    changed: list[uuid.UUID] = []
    async with in_transaction() as conn:
        group = await Group.filter(id=key).using_db(conn).select_for_update().first()
        if group is None:
            raise not_found("group")
        regrant = "permissions" in changes and changes["permissions"] != group.permissions
        if "name" in changes and changes["name"] != group.name:
            others = Group.filter(name=changes["name"]).exclude(id=key).using_db(conn)
            if await others.exists():
                raise _duplicate(changes["name"])
        if not changes:
            return group
        for field, value in changes.items():
            setattr(group, field, value)
        try:
            await group.save(update_fields=list(changes), using_db=conn)
        except IntegrityError:  # lost a race for the name; leaving rolls back
            raise _duplicate(group.name) from None
        if regrant:
            affected = await membership.member_ids(conn, key)
            await membership.lock_users(conn, affected)
            changed = await membership.recompute_grants(conn, affected)
    await _announce(ctx, changed)
    return group


async def delete_group(ctx: RequestContext, gid: str) -> None:
    """Delete a group; its members lose what it granted (NOT_FOUND if gone)."""
    require_permission(ctx, Permission.MANAGE_USERS)
    key = group_key(gid)
    async with in_transaction() as conn:
        if not await membership.lock_group(conn, key):
            raise not_found("group")
        affected = await membership.member_ids(conn, key)
        await membership.lock_users(conn, affected)
        await membership.delete_group(conn, key)
        changed = await membership.recompute_grants(conn, affected)
    await _announce(ctx, changed)


async def _change_members(
    ctx: RequestContext, gid: str, user_gids: Sequence[str], *, add: bool
) -> Group:
    require_permission(ctx, Permission.MANAGE_USERS)
    key = group_key(gid, field="groupId")
    wanted = _user_keys(user_gids)
    async with in_transaction() as conn:
        if not await membership.lock_group(conn, key):
            raise not_found("group")
        found = await membership.lock_users(conn, list(wanted))
        missing = [sent for user_id, sent in wanted.items() if user_id not in found]
        if missing:
            raise ApiError(
                ErrorCode.NOT_FOUND,
                f"users not found: {', '.join(missing)}",
                field="userIds",
                userIds=missing,
            )
        write = membership.add_members if add else membership.remove_members
        moved = await write(conn, key, list(wanted))
        changed = await membership.recompute_grants(conn, moved)
        group = await Group.filter(id=key).using_db(conn).get()
    await _announce(ctx, changed)
    return group


async def add_group_members(ctx: RequestContext, gid: str, user_gids: Sequence[str]) -> Group:
    """Idempotent: members already in the group stay as they are."""
    return await _change_members(ctx, gid, user_gids, add=True)


async def remove_group_members(ctx: RequestContext, gid: str, user_gids: Sequence[str]) -> Group:
    """Idempotent: users not in the group are no-ops (unknown users are NOT_FOUND)."""
    return await _change_members(ctx, gid, user_gids, add=False)
