"""Reading users and the admin's user management."""

from __future__ import annotations

import uuid

from tortoise.transactions import in_transaction

from db.keyset import Page, SortKey
from db.models import ApiToken, User
from db.vocabulary import Permission, UserRole
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import conflict, not_found
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import has_permission, require_permission
from resolvers.tokens import end_sessions

_ORDER = (SortKey("created_at", kind="datetime"), SortKey("id", kind="uuid"))


async def users(ctx: RequestContext, args: PageArgs) -> Page[User]:
    require_permission(ctx, Permission.MANAGE_USERS)
    return await paginate(User.all(), _ORDER, args)


async def users_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    """Node lookups: members see themselves, user managers see everyone."""
    viewer = ctx.viewer
    if viewer is None or ctx.auth_error is not None:
        return {}
    if has_permission(ctx, Permission.MANAGE_USERS):
        rows = await User.filter(id__in=keys)
    else:
        rows = [viewer] if viewer.id in keys else []
    return {row.id: row for row in rows}


async def _managed_user(ctx: RequestContext, user_id: str) -> User:
    require_permission(ctx, Permission.MANAGE_USERS)
    key = global_id.decode_uuid(user_id, "User", field="userId")
    user = await User.filter(id=key).first()
    if user is None:
        raise not_found("user")
    return user


async def _guard_last_admin(user: User, conn: object) -> None:
    """Refuse to leave the deployment without an enabled admin.

    Locks the enabled admins' rows (``count()`` would drop FOR UPDATE), so two
    admins demoting or disabling each other at once are judged one at a time.
    """
    admins = (
        await User.filter(role=UserRole.ADMIN, disabled=False)
        .using_db(conn)  # type: ignore[arg-type]
        .order_by("id")
        .select_for_update()
    )
    if not any(admin.id != user.id for admin in admins):
        raise conflict("the last enabled admin cannot be demoted or disabled")


async def set_user_role(ctx: RequestContext, user_id: str, role: UserRole) -> User:
    role = UserRole(role)  # Strawberry hands input-object enums over as their plain value
    user = await _managed_user(ctx, user_id)
    if user.role is role:
        return user
    async with in_transaction() as conn:
        if user.role is UserRole.ADMIN:
            await _guard_last_admin(user, conn)
        user.role = role
        await user.save(update_fields=["role", "updated_at"], using_db=conn)
    await end_sessions(ctx, user.id, role_changed=True)
    return user


async def set_user_disabled(ctx: RequestContext, user_id: str, disabled: bool) -> User:
    """Disabling also ends every session and token of that user at once."""
    user = await _managed_user(ctx, user_id)
    if user.disabled is disabled:
        return user
    async with in_transaction() as conn:
        if disabled and user.role is UserRole.ADMIN:
            await _guard_last_admin(user, conn)
        user.disabled = disabled
        await user.save(update_fields=["disabled", "updated_at"], using_db=conn)
        if disabled:
            await ApiToken.filter(user_id=user.id).using_db(conn).delete()
    if disabled:
        await end_sessions(ctx, user.id)
    return user
