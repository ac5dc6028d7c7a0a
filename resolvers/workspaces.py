"""Workspaces: the viewer's own, creating one from a template, and the latest chat
bound to each.

A workspace belongs to its owner alone: anyone else's is NOT_FOUND (or null),
exactly like a missing one. Files are made by ``ctx.workspaces``, which the
server wires to the workspace backend.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from db import chat_config
from db.models import Chat, Workspace, WorkspaceTemplate
from db.raw_sql import fetch, model_from
from db.vocabulary import WORKSPACE_NAME_MAX, ErrorCode, Permission
from db.workspace_ttl import effective_ttl_s
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, not_found
from resolvers.permissions import require_permission, require_viewer
from resolvers.workspace_templates import TYPE_NAME as TEMPLATE_TYPE

TYPE_NAME = "Workspace"
CHATS_BY_WORKSPACE_MAX = 25

# The latest non-archived chat of the viewer per workspace (chats_workspace_id index).
_LATEST_CHAT_PER_WORKSPACE = """
SELECT DISTINCT ON (workspace_id) * FROM chats
WHERE workspace_id = ANY($1::uuid[]) AND owner_id = $2 AND parent_id IS NULL AND NOT archived
ORDER BY workspace_id, updated_at DESC, id DESC
"""


@dataclass
class CreatedWorkspace:
    workspace: Workspace
    warnings: list[str] = field(default_factory=list)


def workspace_key(gid: str, field_name: str = "id") -> uuid.UUID:
    return global_id.decode_uuid(gid, TYPE_NAME, field=field_name)


async def own_workspace_key(
    ctx: RequestContext, gid: str, field_name: str = "workspaceId"
) -> uuid.UUID:
    """The id of one of the viewer's workspaces; NOT_FOUND for anyone else's."""
    viewer = require_viewer(ctx)
    key = workspace_key(gid, field_name)
    if not await Workspace.filter(id=key, owner_id=viewer.id).exists():
        raise not_found("workspace")
    return key


async def workspaces(ctx: RequestContext) -> list[Workspace]:
    """The viewer's workspaces, newest first."""
    viewer = require_viewer(ctx)
    return list(await Workspace.filter(owner_id=viewer.id).order_by("-created_at", "-id"))


async def workspaces_by_ids(
    ctx: RequestContext, keys: list[uuid.UUID]
) -> dict[uuid.UUID, Workspace]:
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    rows = await Workspace.filter(id__in=keys, owner_id=ctx.viewer.id)
    return {row.id: row for row in rows}


def _check_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > WORKSPACE_NAME_MAX or not name.isprintable():
        raise bad_input("name", f"1 to {WORKSPACE_NAME_MAX} printable characters")
    return name


async def _usable_template(gid: str) -> WorkspaceTemplate:
    """An existing, non-deprecated template the allowlist permits (for everyone:
    the allowlist is the deployment's rule, admins included)."""
    key = global_id.decode_uuid(gid, TEMPLATE_TYPE, field="templateId")
    template = await WorkspaceTemplate.filter(id=key).first()
    if template is None:
        raise not_found("workspace template")
    if template.deprecated:
        raise bad_input("templateId", "this template is deprecated")
    if not chat_config.template_allowed(template.id, await chat_config.template_allowlist()):
        raise bad_input("templateId", "this template is not in the deployment's allowlist")
    return template


async def create_workspace(
    ctx: RequestContext, *, name: str, template_id: str | None
) -> CreatedWorkspace:
    """A running workspace for the viewer: the template cloned or copied (none: an
    empty git repository), its TTL the site's, or for 0 the template's default."""
    viewer = require_permission(ctx, Permission.CREATE_CHAT)
    provision = ctx.workspaces
    if provision is None:
        raise ApiError(
            ErrorCode.INTERNAL_SERVER_ERROR, "this server has no workspace backend configured"
        )
    checked_name = _check_name(name)
    template = await _usable_template(template_id) if template_id else None
    ttl_s = effective_ttl_s(
        await chat_config.workspace_ttl_s(), template.default_ttl_s if template else None
    )
    workspace = await provision(
        owner_id=viewer.id, name=checked_name, template=template, ttl_s=ttl_s
    )
    warnings = [] if ttl_s is not None else ["This workspace never stops on its own (no TTL)."]
    return CreatedWorkspace(workspace, warnings)


async def chats_by_workspace(ctx: RequestContext, gids: list[str]) -> list[Chat]:
    """Per workspace (in the order asked, each once), the viewer's most recently
    updated non-archived root chat bound to it (sub-agents work in their root's
    workspace, but the workspace's chat is the root); workspaces with none are
    left out. One query."""
    viewer = require_viewer(ctx)
    if len(gids) > CHATS_BY_WORKSPACE_MAX:
        raise bad_input(
            "workspaceIds",
            f"at most {CHATS_BY_WORKSPACE_MAX} ids",
            maximum=CHATS_BY_WORKSPACE_MAX,
        )
    keys: list[uuid.UUID] = []
    for index, gid in enumerate(gids):
        key = workspace_key(gid, f"workspaceIds[{index}]")
        if key not in keys:
            keys.append(key)
    if not keys:
        return []
    rows = await fetch(_LATEST_CHAT_PER_WORKSPACE, keys, viewer.id)
    latest = {row["workspace_id"]: model_from(Chat, row) for row in rows}
    return [latest[key] for key in keys if key in latest]
