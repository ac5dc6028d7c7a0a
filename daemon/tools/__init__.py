"""The tools that let the model work in its chat's workspace: files and shell.

Every path is confined to the workspace (``paths``); every refusal is a
``ToolError`` the model can read and act on.
"""

from __future__ import annotations

from daemon.tool_registry import Tool
from daemon.tools import edit_files, read_file, write_file
from daemon.tools.execute import execute_tool
from daemon.tools.process_output import process_output_tool
from daemon.tools.processes import ProcessTable
from daemon.tools.turn_context import ToolError, ToolTurn

__all__ = ["ProcessTable", "ToolError", "ToolTurn", "workspace_tools"]


def workspace_tools(processes: ProcessTable) -> list[Tool]:
    """``read_file``, ``write_file``, ``edit_files``, ``execute`` and ``process_output``."""
    return [
        read_file.TOOL,
        write_file.TOOL,
        edit_files.TOOL,
        execute_tool(processes),
        process_output_tool(processes),
    ]
