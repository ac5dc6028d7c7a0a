"""``node(id)`` / ``nodes(ids)``: global ids to rows, invisible ones as null.

Lookups are grouped by type so ``nodes`` costs one query per type, not per id.
Another user's object resolves to null exactly like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from resolvers import global_id
from resolvers.chats import chats_by_ids
from resolvers.context import RequestContext
from resolvers.debug_runs import runs_by_ids
from resolvers.files import files_by_ids
from resolvers.groups import groups_by_ids
from resolvers.messages import messages_by_ids, queued_by_ids
from resolvers.model_configs import model_configs_by_ids
from resolvers.providers import providers_by_ids
from resolvers.tokens import tokens_by_ids
from resolvers.users import users_by_ids
from resolvers.workspace_templates import templates_by_ids
from resolvers.workspaces import workspaces_by_ids

Fetch = Callable[[RequestContext, list[Any]], Awaitable[dict[Any, Any]]]

# type name → (key parser, batch fetch). Later domains register here.
_FETCHERS: dict[str, tuple[Callable[[str], Any], Fetch]] = {
    "User": (uuid.UUID, users_by_ids),
    "ApiToken": (uuid.UUID, tokens_by_ids),
    "Chat": (uuid.UUID, chats_by_ids),
    "DebugRun": (uuid.UUID, runs_by_ids),
    "Message": (global_id.parse_bigint, messages_by_ids),
    "QueuedMessage": (global_id.parse_bigint, queued_by_ids),
    "Provider": (uuid.UUID, providers_by_ids),
    "ModelConfig": (uuid.UUID, model_configs_by_ids),
    "ChatFile": (uuid.UUID, files_by_ids),
    "Workspace": (uuid.UUID, workspaces_by_ids),
    "WorkspaceTemplate": (uuid.UUID, templates_by_ids),
    "Group": (uuid.UUID, groups_by_ids),
}


def register(type_name: str, parse: Callable[[str], Any], fetch: Fetch) -> None:
    _FETCHERS[type_name] = (parse, fetch)


def _parse(gid: str) -> tuple[str, Any] | None:
    decoded = global_id.decode(gid)
    if decoded is None or decoded[0] not in _FETCHERS:
        return None
    type_name, raw = decoded
    try:
        return type_name, _FETCHERS[type_name][0](raw)
    except ValueError:
        return None


async def nodes(ctx: RequestContext, ids: list[str]) -> list[object | None]:
    if ctx.auth_error is not None:
        raise ctx.auth_error  # like viewer: a bad token is an error, not "signed out"
    parsed = [_parse(gid) for gid in ids]
    wanted: dict[str, list[Any]] = {}
    for item in parsed:
        if item is not None:
            wanted.setdefault(item[0], []).append(item[1])
    found: dict[str, dict[Any, Any]] = {}
    for type_name, keys in wanted.items():
        found[type_name] = await _FETCHERS[type_name][1](ctx, keys)
    return [None if item is None else found[item[0]].get(item[1]) for item in parsed]


async def node(ctx: RequestContext, gid: str) -> object | None:
    return (await nodes(ctx, [gid]))[0]
