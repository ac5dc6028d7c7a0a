"""Workspace templates: admins manage them, everyone lists the ones they may use.

A template is a git repository to clone or a directory to copy. Any signed-in
user reads templates; the listing shows members only what the deployment's
template allowlist permits (admins see every template, to manage them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from db import chat_config
from db.models import WorkspaceTemplate
from db.vocabulary import (
    WORKSPACE_TEMPLATE_NAME_MAX,
    WORKSPACE_TTL_MAX_S,
    WORKSPACE_TTL_MIN_S,
    Permission,
    WorkspaceSourceKind,
)
from db.workspace_ttl import ttl_in_bounds
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, conflict, not_found
from resolvers.permissions import has_permission, require_permission, require_viewer

DESCRIPTION_MAX = 10_000
SOURCE_MAX = 4096
TYPE_NAME = "WorkspaceTemplate"


@dataclass
class TemplateResult:
    template: WorkspaceTemplate
    warnings: list[str] = field(default_factory=list)


def template_key(gid: str, field_name: str = "id") -> uuid.UUID:
    return global_id.decode_uuid(gid, TYPE_NAME, field=field_name)


# ---------------------------------------------------------------- validation


def check_name(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > WORKSPACE_TEMPLATE_NAME_MAX or not name.isprintable():
        raise bad_input("name", f"1 to {WORKSPACE_TEMPLATE_NAME_MAX} printable characters")
    return name


def check_description(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > DESCRIPTION_MAX or "\x00" in text:
        raise bad_input("description", f"at most {DESCRIPTION_MAX} characters, no NUL")
    return text


def check_source(value: Any, kind: WorkspaceSourceKind) -> str:
    """A directory must be an absolute path; a git source is a URL or path to clone.

    Credentials in an http(s) URL are refused: every signed-in user can read a
    template's source, so a private repository needs a credential helper on the
    server instead."""
    source = value.strip() if isinstance(value, str) else ""
    if not source:
        raise bad_input("source", "must not be empty")
    if len(source) > SOURCE_MAX or not source.isprintable():
        raise bad_input("source", f"at most {SOURCE_MAX} printable characters")
    if kind == WorkspaceSourceKind.DIRECTORY:
        if not PurePosixPath(source).is_absolute():
            raise bad_input("source", "a DIRECTORY source must be an absolute path")
        return source
    if source.startswith("-"):
        raise bad_input("source", "must be a repository URL or path")
    try:
        parts = urlsplit(source)
    except ValueError:
        raise bad_input("source", "must be a repository URL or path") from None
    has_user = parts.username is not None and parts.scheme.lower() in {"http", "https"}
    if parts.password is not None or has_user:
        raise bad_input(
            "source", "must not contain credentials (templates are readable by every user)"
        )
    return source


def check_default_ttl(value: Any) -> int | None:
    """``defaultTtlSeconds``: null (never stops), else 60 s .. 30 days."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not ttl_in_bounds(value):
        raise bad_input(
            "defaultTtlSeconds",
            f"null (never stop) or {WORKSPACE_TTL_MIN_S} to {WORKSPACE_TTL_MAX_S} seconds",
            minimum=WORKSPACE_TTL_MIN_S,
            maximum=WORKSPACE_TTL_MAX_S,
        )
    return value


def _apply(row: WorkspaceTemplate, values: dict[str, Any]) -> None:
    """Validates and sets every given field (``source_kind`` before ``source``)."""
    if "name" in values:
        row.name = check_name(values["name"])
    if "description" in values:
        row.description = check_description(values["description"] or "")
    if "source_kind" in values:
        if values["source_kind"] is None:
            raise bad_input("sourceKind", "must not be null")
        row.source_kind = WorkspaceSourceKind(values["source_kind"])
    if "source" in values or "source_kind" in values:
        row.source = check_source(values.get("source", row.source), row.source_kind)
    if "deprecated" in values:
        if values["deprecated"] is None:
            raise bad_input("deprecated", "must be true or false")
        row.deprecated = bool(values["deprecated"])
    if "default_ttl_seconds" in values:
        row.default_ttl_s = check_default_ttl(values["default_ttl_seconds"])


def _duplicate(name: str) -> ApiError:
    return conflict(f"a workspace template named {name!r} already exists", field="name")


# ---------------------------------------------------------------- reads


async def workspace_templates(
    ctx: RequestContext, include_deprecated: bool = False
) -> list[WorkspaceTemplate]:
    """By name. Members see only allowlisted templates; admins see all."""
    require_viewer(ctx)
    rows = WorkspaceTemplate.all()
    if not include_deprecated:
        rows = rows.filter(deprecated=False)
    if not has_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG):
        allowlist = await chat_config.template_allowlist()
        if allowlist:
            rows = rows.filter(id__in=allowlist)
    return list(await rows.order_by("name", "id"))


async def templates_by_ids(
    ctx: RequestContext, keys: list[uuid.UUID]
) -> dict[uuid.UUID, WorkspaceTemplate]:
    """Node lookups see what ``workspace_templates`` lists: members only the
    allowlisted templates (when there is an allowlist), admins all. A workspace's
    own ``template`` field is not a lookup by id and keeps showing its template."""
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    rows = WorkspaceTemplate.filter(id__in=keys)
    if not has_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG):
        allowlist = await chat_config.template_allowlist()
        if allowlist:
            rows = rows.filter(id__in=allowlist)
    return {row.id: row for row in await rows}


# ---------------------------------------------------------------- admin


async def create_template(ctx: RequestContext, values: dict[str, Any]) -> TemplateResult:
    """``values``: name, source, source_kind; optionally description, deprecated,
    default_ttl_seconds."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    row = WorkspaceTemplate(description="", deprecated=False, default_ttl_s=None, source="")
    _apply(row, {"description": "", **values})
    if await WorkspaceTemplate.filter(name=row.name).exists():
        raise _duplicate(row.name)
    try:
        await row.save()
    except IntegrityError:
        if await WorkspaceTemplate.filter(name=row.name).exists():  # lost a race
            raise _duplicate(row.name) from None
        raise
    return TemplateResult(row, await _warnings(row))


async def update_template(ctx: RequestContext, gid: str, values: dict[str, Any]) -> TemplateResult:
    """Only the keys present change; ``default_ttl_seconds: None`` clears the default."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    key = template_key(gid)
    async with in_transaction() as conn:
        row = await WorkspaceTemplate.filter(id=key).using_db(conn).select_for_update().first()
        if row is None:
            raise not_found("workspace template")
        _apply(row, values)
        others = WorkspaceTemplate.filter(name=row.name).exclude(id=row.id).using_db(conn)
        if await others.exists():
            raise _duplicate(row.name)
        try:
            await row.save(using_db=conn)
        except IntegrityError:  # lost a race for the name; leaving rolls back
            raise _duplicate(row.name) from None
    warnings = await _warnings(row)
    if row.deprecated and row.id in await chat_config.template_allowlist():
        warnings.append(
            "The template allowlist names this template, but deprecated templates cannot be used."
        )
    return TemplateResult(row, warnings)


async def delete_template(ctx: RequestContext, gid: str) -> list[str]:
    """Workspaces made from it keep their files (their template becomes null)."""
    require_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG)
    key = template_key(gid)
    deleted = await WorkspaceTemplate.filter(id=key).delete()
    if not deleted:
        raise not_found("workspace template")
    if key in await chat_config.template_allowlist():
        return [
            "The template allowlist still names this template; it allows only the "
            "other templates it names."
        ]
    return []


async def _warnings(row: WorkspaceTemplate) -> list[str]:
    if row.default_ttl_s is None and await chat_config.workspace_ttl_s() == 0:
        return ["No default TTL and no site workspace TTL: its workspaces never stop on their own."]
    return []
