"""``list_templates`` and ``read_template``: what workspaces the agent may create.

Both see only templates the deployment allows (the allowlist; empty = all)
and never deprecated ones, so the model cannot pick one create_workspace
would refuse.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from daemon.tool_registry import Tool, ToolArgs, ToolError
from daemon.tools.turn_context import ToolTurn
from db.chat_config import template_allowlist
from db.models import WorkspaceTemplate
from db.vocabulary import WORKSPACE_TEMPLATE_NAME_MAX


class ListTemplatesArgs(ToolArgs):
    """None: the allowlist decides what is listed, not the model."""


class TemplateRef(ToolArgs):
    template: str = Field(
        min_length=1, max_length=WORKSPACE_TEMPLATE_NAME_MAX, description="Template id or name."
    )


async def allowed_templates() -> list[WorkspaceTemplate]:
    rows = WorkspaceTemplate.filter(deprecated=False).order_by("name")
    allowlist = await template_allowlist()
    if allowlist:
        rows = rows.filter(id__in=allowlist)
    return list(await rows)


async def find_template(ref: str) -> WorkspaceTemplate:
    """An allowed template by id or exact name; ToolError names the choices."""
    templates = await allowed_templates()
    try:
        key: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        key = None
    for template in templates:
        if template.id == key or template.name == ref:
            return template
    names = ", ".join(t.name for t in templates) or "none"
    raise ToolError(f"no allowed template {ref!r}; the allowed templates are: {names}")


def _summary(template: WorkspaceTemplate) -> dict[str, Any]:
    return {"id": str(template.id), "name": template.name, "description": template.description}


async def list_templates(args: ListTemplatesArgs, turn: ToolTurn) -> dict[str, Any]:
    return {"templates": [_summary(t) for t in await allowed_templates()]}


async def read_template(args: TemplateRef, turn: ToolTurn) -> dict[str, Any]:
    template = await find_template(args.template)
    return {
        **_summary(template),
        "sourceKind": template.source_kind.value,
        "source": template.source,
        "defaultTtlSeconds": template.default_ttl_s,
    }


LIST_TOOL = Tool.declare(
    "list_templates",
    "List the workspace templates you may create a workspace from.",
    ListTemplatesArgs,
    list_templates,
    timeout_s=15.0,
)
READ_TOOL = Tool.declare(
    "read_template",
    "Details of one workspace template, by id or name.",
    TemplateRef,
    read_template,
    timeout_s=15.0,
)
