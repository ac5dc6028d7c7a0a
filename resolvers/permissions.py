"""Who may do what: derived from the viewer's role, readable by clients."""

from __future__ import annotations

from db.models import User
from db.vocabulary import ROLE_PERMISSIONS, Permission
from resolvers.context import RequestContext
from resolvers.errors import forbidden, unauthenticated


def permissions_of(user: User | None) -> list[Permission]:
    if user is None or user.disabled:
        return []
    return list(ROLE_PERMISSIONS[user.role])


def require_viewer(ctx: RequestContext) -> User:
    """The signed-in user, or UNAUTHENTICATED (with the token's own reason)."""
    if ctx.auth_error is not None:
        raise ctx.auth_error
    if ctx.viewer is None:
        raise unauthenticated()
    return ctx.viewer


def require_permission(ctx: RequestContext, permission: Permission) -> User:
    viewer = require_viewer(ctx)
    if permission not in ROLE_PERMISSIONS[viewer.role]:
        raise forbidden(f"requires the {permission.name} permission")
    return viewer


def has_permission(ctx: RequestContext, permission: Permission) -> bool:
    return ctx.viewer is not None and permission in permissions_of(ctx.viewer)
