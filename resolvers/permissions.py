"""Who may do what: the viewer's role, plus what their groups grant.

A group may grant only ``GRANTABLE_PERMISSIONS`` (read-only views). What a user's
groups grant is kept on their row (``users.granted_permissions``) by every group
change, so a check reads the row the token check already loaded: no query.
"""

from __future__ import annotations

from collections.abc import Iterable

from db.models import User
from db.vocabulary import GRANTABLE_PERMISSIONS, ROLE_PERMISSIONS, Permission
from resolvers.context import RequestContext
from resolvers.errors import forbidden, unauthenticated

_BY_VALUE = {p.value: p for p in Permission}


def grantable(values: Iterable[object]) -> set[Permission]:
    """The grantable permissions among stored values; anything else is ignored,
    so a stale or hand-edited value can never grant more than a group may."""
    found = (_BY_VALUE.get(v) if isinstance(v, str) else None for v in values)
    return {p for p in found if p is not None and p in GRANTABLE_PERMISSIONS}


def _granted(user: User) -> set[Permission]:
    stored = getattr(user, "granted_permissions", None)
    return grantable(stored) if isinstance(stored, list) else set()


def permissions_of(user: User | None) -> list[Permission]:
    """The role's permissions and the groups' grants, in the enum's order."""
    if user is None or user.disabled:
        return []
    held = set(ROLE_PERMISSIONS[user.role]) | _granted(user)
    return [p for p in Permission if p in held]


def require_viewer(ctx: RequestContext) -> User:
    """The signed-in user, or UNAUTHENTICATED (with the token's own reason)."""
    if ctx.auth_error is not None:
        raise ctx.auth_error
    if ctx.viewer is None:
        raise unauthenticated()
    return ctx.viewer


def require_permission(ctx: RequestContext, permission: Permission) -> User:
    viewer = require_viewer(ctx)
    if permission not in ROLE_PERMISSIONS[viewer.role] and permission not in _granted(viewer):
        raise forbidden(f"requires the {permission.name} permission")
    return viewer


def has_permission(ctx: RequestContext, permission: Permission) -> bool:
    return ctx.viewer is not None and permission in permissions_of(ctx.viewer)
