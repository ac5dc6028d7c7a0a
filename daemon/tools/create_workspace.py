"""``create_workspace``: make a workspace from an allowed template and bind the chat to it.

Root chats only (the policy refuses sub-agents). The deployment's workspace
TTL applies (0 = the template's default), and the rest of the turn works in
the new workspace at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from daemon.chat_context import plan_path, workspace_dir
from daemon.tool_registry import Tool, ToolError
from daemon.tools.templates import TemplateRef, find_template
from daemon.tools.turn_context import AgentTurn
from daemon.workspace_backend import WorkspaceError, create_workspace
from db.chat_config import workspace_ttl_s
from db.models import Chat
from db.vocabulary import WORKSPACE_NAME_MAX
from db.workspace_ttl import effective_ttl_s

DESCRIPTION = (
    "Create a workspace from a template (see list_templates) and bind this chat to "
    "it; file and shell tools then work inside it. A chat has one workspace."
)


class CreateWorkspaceArgs(TemplateRef):
    # A longer name is cut to WORKSPACE_NAME_MAX rather than refused; this only bounds input.
    name: str = Field("", max_length=1000, description="A short name for the workspace.")


async def create_workspace_tool(args: CreateWorkspaceArgs, turn: AgentTurn) -> dict[str, Any]:
    if turn.workspace_id is not None:
        raise ToolError("this chat already has a workspace; keep working in it")
    if turn.backend is None:
        raise ToolError("workspaces are not available on this server")
    template = await find_template(args.template)
    name = (args.name or template.name).strip()[:WORKSPACE_NAME_MAX] or template.name
    ttl_s = effective_ttl_s(await workspace_ttl_s(), template.default_ttl_s)
    try:
        workspace = await create_workspace(
            turn.backend, owner_id=turn.owner_id, name=name, template=template, ttl_s=ttl_s
        )
    except WorkspaceError as exc:
        raise ToolError(f"creating the workspace failed: {exc}") from None
    await Chat.filter(id=turn.chat_id).update(workspace_id=workspace.id)
    turn.workspace_id = workspace.id
    turn.workspace_dir = await workspace_dir(turn.backend, workspace.id)
    if turn.workspace_dir is not None:
        turn.plan_path = plan_path(turn.chat_id)
    return {
        "workspaceId": str(workspace.id),
        "name": workspace.name,
        "template": template.name,
        "ttlSeconds": ttl_s,
    }


TOOL = Tool.declare(
    "create_workspace", DESCRIPTION, CreateWorkspaceArgs, create_workspace_tool, timeout_s=600.0
)
