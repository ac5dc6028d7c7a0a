"""The agent's tools: files and shell in the chat's workspace, and the chat-level
tools (templates, workspaces, plans, questions, sub-agents).

Every path is confined to the workspace (``paths``); every refusal is a
``ToolError`` the model can read and act on. Which tools a chat may use is
decided per turn by ``daemon.tool_policy``.
"""

from __future__ import annotations

from daemon.tool_registry import Tool, ToolError
from daemon.tools import (
    ask_user_question,
    create_workspace,
    edit_files,
    propose_plan,
    read_file,
    spawn_agent,
    templates,
    write_file,
)
from daemon.tools.execute import execute_tool
from daemon.tools.process_output import process_output_tool
from daemon.tools.processes import ProcessTable
from daemon.tools.turn_context import ToolTurn

__all__ = ["ProcessTable", "ToolError", "ToolTurn", "agent_tools", "workspace_tools"]


def workspace_tools(processes: ProcessTable) -> list[Tool]:
    """``read_file``, ``write_file``, ``edit_files``, ``execute`` and ``process_output``."""
    return [
        read_file.TOOL,
        write_file.TOOL,
        edit_files.TOOL,
        execute_tool(processes),
        process_output_tool(processes),
    ]


def agent_tools(processes: ProcessTable) -> list[Tool]:
    """Every tool a daemon offers (the policy narrows them per chat)."""
    return [
        *workspace_tools(processes),
        templates.LIST_TOOL,
        templates.READ_TOOL,
        create_workspace.TOOL,
        propose_plan.TOOL,
        ask_user_question.TOOL,
        spawn_agent.SPAWN_TOOL,
        spawn_agent.EXPLORE_TOOL,
    ]
