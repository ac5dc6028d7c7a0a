"""Workspaces and workspace templates: types, queries and mutations.

TTLs are whole seconds (30 days in milliseconds would not fit a GraphQL Int).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry

from db import models
from db.vocabulary import WorkspaceSourceKind, WorkspaceStatus
from resolvers import workspace_templates, workspaces
from schema.info import Info
from schema.node import Node, global_id_field, row_is
from schema.provider import given

WorkspaceStatusEnum = strawberry.enum(
    WorkspaceStatus,
    name="WorkspaceStatus",
    description="STOPPED: idle past its TTL (or stopped); it starts again when used.",
)
WorkspaceSourceKindEnum = strawberry.enum(
    WorkspaceSourceKind,
    name="WorkspaceSourceKind",
    description="GIT: clone the source repository. DIRECTORY: copy the source directory.",
)


def _default_ttl_seconds(root: models.WorkspaceTemplate) -> int | None:
    return root.default_ttl_s


def _ttl_seconds(root: models.Workspace) -> int | None:
    return root.ttl_s


@strawberry.type(
    description="What a workspace is made from. Any signed-in user reads templates; "
    "admins (MANAGE_DEPLOYMENT_CONFIG) manage them."
)
class WorkspaceTemplate(Node):
    id: strawberry.ID = global_id_field("WorkspaceTemplate")
    name: str
    description: str
    source: str = strawberry.field(
        description="The repository URL or path to clone (GIT), or the absolute path of "
        "the directory to copy (DIRECTORY)."
    )
    source_kind: WorkspaceSourceKind
    deprecated: bool = strawberry.field(description="Deprecated templates make no new workspaces.")
    default_ttl_seconds: int | None = strawberry.field(
        resolver=_default_ttl_seconds,
        description="The idle TTL its workspaces get while the site workspace TTL is 0; "
        "null: they never stop on their own.",
    )
    created_at: datetime
    updated_at: datetime
    is_type_of = row_is(models.WorkspaceTemplate)


@strawberry.type(description="A directory of git repositories the agent works in; yours alone.")
class Workspace(Node):
    id: strawberry.ID = global_id_field("Workspace")
    name: str
    status: WorkspaceStatus
    ttl_seconds: int | None = strawberry.field(
        resolver=_ttl_seconds,
        description="Idle seconds before it is stopped, fixed when it was made; null: never.",
    )
    last_active_at: datetime
    stopped_at: datetime | None
    created_at: datetime
    is_type_of = row_is(models.Workspace)

    @strawberry.field(description="The template it was made from; null if none or deleted.")
    async def template(self, root: models.Workspace, info: Info) -> WorkspaceTemplate | None:
        key = root.template_id  # type: ignore[attr-defined]
        if key is None:
            return None
        loaded = await info.context.loaders.workspace_templates.load(key)
        return cast(WorkspaceTemplate | None, loaded)


@strawberry.input
class CreateWorkspaceTemplateInput:
    name: str = strawberry.field(description="1..200 characters, unique.")
    source_kind: WorkspaceSourceKind
    source: str = strawberry.field(
        description="GIT: a repository URL (no credentials) or path. DIRECTORY: an absolute path."
    )
    description: str = ""
    deprecated: bool = False
    default_ttl_seconds: int | None = strawberry.field(
        default=None, description="null (never stop) or 60 .. 2592000 (30 days)."
    )


@strawberry.input(description="Only the fields given change.")
class UpdateWorkspaceTemplateInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    source_kind: WorkspaceSourceKind | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    deprecated: bool | None = strawberry.UNSET
    default_ttl_seconds: int | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it (never stop)."
    )


@strawberry.input
class DeleteWorkspaceTemplateInput:
    id: strawberry.ID


@strawberry.type
class WorkspaceTemplatePayload:
    workspace_template: WorkspaceTemplate
    warnings: list[str]


@strawberry.type
class DeleteWorkspaceTemplatePayload:
    deleted_id: strawberry.ID
    warnings: list[str]


@strawberry.input
class CreateWorkspaceInput:
    name: str = strawberry.field(description="1..200 characters.")
    template_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A non-deprecated template the allowlist permits; none: an empty git "
        "repository.",
    )


@strawberry.type
class CreateWorkspacePayload:
    workspace: Workspace
    warnings: list[str]


_TEMPLATE_FIELDS = (
    "name",
    "source_kind",
    "source",
    "description",
    "deprecated",
    "default_ttl_seconds",
)


def _row(value: Any) -> Any:
    return value


@strawberry.type
class WorkspaceQueries:
    @strawberry.field(
        description="Workspace templates by name. Members see only those the template "
        "allowlist permits; admins see all."
    )
    async def workspace_templates(
        self, info: Info, include_deprecated: bool = False
    ) -> list[WorkspaceTemplate]:
        rows = await workspace_templates.workspace_templates(info.context, include_deprecated)
        return cast(list[WorkspaceTemplate], rows)

    @strawberry.field(description="Your workspaces, newest first.")
    async def workspaces(self, info: Info) -> list[Workspace]:
        return cast(list[Workspace], await workspaces.workspaces(info.context))


@strawberry.type
class WorkspaceMutations:
    @strawberry.mutation(description="Add a workspace template. Needs MANAGE_DEPLOYMENT_CONFIG.")
    async def create_workspace_template(
        self, info: Info, input: CreateWorkspaceTemplateInput
    ) -> WorkspaceTemplatePayload:
        result = await workspace_templates.create_template(
            info.context, given(input, _TEMPLATE_FIELDS)
        )
        return WorkspaceTemplatePayload(
            workspace_template=_row(result.template), warnings=result.warnings
        )

    @strawberry.mutation(description="Change a workspace template. Needs MANAGE_DEPLOYMENT_CONFIG.")
    async def update_workspace_template(
        self, info: Info, input: UpdateWorkspaceTemplateInput
    ) -> WorkspaceTemplatePayload:
        result = await workspace_templates.update_template(
            info.context, input.id, given(input, _TEMPLATE_FIELDS)
        )
        return WorkspaceTemplatePayload(
            workspace_template=_row(result.template), warnings=result.warnings
        )

    @strawberry.mutation(
        description="Delete a workspace template; its workspaces keep their files. "
        "Needs MANAGE_DEPLOYMENT_CONFIG."
    )
    async def delete_workspace_template(
        self, info: Info, input: DeleteWorkspaceTemplateInput
    ) -> DeleteWorkspaceTemplatePayload:
        warnings = await workspace_templates.delete_template(info.context, input.id)
        return DeleteWorkspaceTemplatePayload(deleted_id=input.id, warnings=warnings)

    @strawberry.mutation(
        description="Make a running workspace for yourself (needs CREATE_CHAT). Its idle "
        "TTL is the site workspace TTL, or for 0 the template's default."
    )
    async def create_workspace(
        self, info: Info, input: CreateWorkspaceInput
    ) -> CreateWorkspacePayload:
        created = await workspaces.create_workspace(
            info.context, name=input.name, template_id=input.template_id
        )
        return CreateWorkspacePayload(workspace=_row(created.workspace), warnings=created.warnings)
