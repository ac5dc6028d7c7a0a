"""``list_templates`` and ``read_template``: what workspaces the agent may create.

Both see only templates the deployment allows (the allowlist; empty = all)
and never deprecated ones, so the model cannot pick one create_workspace
would refuse.
"""

from __future__ import annotations

import uuid
from typing import Any

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool, ToolError
from daemon.tools.turn_context import ToolTurn, require_str
from db.chat_config import template_allowlist
from db.models import WorkspaceTemplate

LIST_SPEC = ToolSpec(
    name="list_templates",
    description="List the workspace templates you may create a workspace from.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
)
READ_SPEC = ToolSpec(
    name="read_template",
    description="Details of one workspace template, by id or name.",
    parameters={
        "type": "object",
        "properties": {"template": {"type": "string", "description": "Template id or name."}},
        "required": ["template"],
        "additionalProperties": False,
    },
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


async def list_templates(args: dict[str, Any], turn: ToolTurn) -> dict[str, Any]:
    return {"templates": [_summary(t) for t in await allowed_templates()]}


async def read_template(args: dict[str, Any], turn: ToolTurn) -> dict[str, Any]:
    template = await find_template(require_str(args, "template"))
    return {
        **_summary(template),
        "sourceKind": template.source_kind.value,
        "source": template.source,
        "defaultTtlSeconds": template.default_ttl_s,
    }


LIST_TOOL = Tool(spec=LIST_SPEC, run=list_templates, timeout_s=15.0)
READ_TOOL = Tool(spec=READ_SPEC, run=read_template, timeout_s=15.0)
