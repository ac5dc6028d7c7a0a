"""The ``execute`` tool: a shell command in the chat's workspace.

A foreground command is bounded by its timeout and its output cap; on timeout
its whole process group is killed, so a hung child can't outlive the call. A
background command is handed to the ``ProcessTable`` and read later with
``process_output``.
"""

from __future__ import annotations

from typing import Any

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool
from daemon.tools.paths import workspace_root
from daemon.tools.processes import OUTPUT_LIMIT, CappedOutput, ProcessTable, ShellProcess
from daemon.tools.turn_context import (
    ToolTurn,
    optional_bool,
    optional_number,
    require_str,
)

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
# How long a killed command may take to be reaped before the call returns anyway.
_REAP_S = 5.0

SPEC = ToolSpec(
    name="execute",
    description=(
        "Run a shell command with /bin/sh -c in the chat's workspace directory. Returns "
        "`exitCode`, the combined stdout and stderr as `output` (capped at "
        f"{OUTPUT_LIMIT // 1024} KiB: the head and tail are kept around an 'N bytes omitted' "
        "marker, and `truncated` is true), and `timedOut`. stdin is empty; nothing can be "
        "answered interactively. When the command ends or times out, every process it "
        "started is killed. For servers and watchers set `background: true`: the call returns "
        "a `processId` at once; read the output with process_output."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The shell command line to run."},
            "timeout_s": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_TIMEOUT_S,
                "description": (
                    f"Seconds before a foreground command is killed "
                    f"(default {DEFAULT_TIMEOUT_S:g}, at most {MAX_TIMEOUT_S:g})."
                ),
            },
            "background": {
                "type": "boolean",
                "description": "Start the command and return its processId at once.",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    },
)


def execute_tool(processes: ProcessTable) -> Tool:
    """The ``execute`` tool, starting background commands in ``processes``."""

    async def execute(args: dict[str, Any], turn: ToolTurn) -> dict[str, Any]:
        command = require_str(args, "command")
        timeout_s = optional_number(
            args,
            "timeout_s",
            DEFAULT_TIMEOUT_S,
            minimum=0,
            maximum=MAX_TIMEOUT_S,
            exclusive_minimum=True,
        )
        background = optional_bool(args, "background", False)
        cwd = workspace_root(turn)
        if background:
            process = await processes.start(turn.chat_id, command, cwd)
            return {"processId": process.id}
        shell = await ShellProcess.start(command, cwd, CappedOutput())
        return await run_foreground(shell, timeout_s)

    # The registry's own limit must not cut a command short of its timeout.
    return Tool(spec=SPEC, run=execute, timeout_s=MAX_TIMEOUT_S + 30)


async def run_foreground(shell: ShellProcess, timeout_s: float) -> dict[str, Any]:
    """Waits for ``shell`` up to ``timeout_s``, then kills its group if it still runs.

    Cancellation kills the group too, and returns only once it is gone.
    """
    try:
        timed_out = not await shell.wait_exit(timeout_s)
    finally:
        try:
            shell.kill()
            await shell.wait_exit(_REAP_S)
            await shell.wait_output_closed()
        finally:
            shell.close()
    return {
        "exitCode": shell.returncode,
        "output": shell.output.text(),
        "truncated": shell.output.truncated,
        "timedOut": timed_out,
    }
