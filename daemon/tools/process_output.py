"""The ``process_output`` tool: check on a background command of this chat.

Waiting happens here, bounded by ``wait_s``, so the model can wait for a build
or a test run without sleeping in a foreground shell.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from daemon.tool_registry import Tool, ToolArgs
from daemon.tools.processes import ProcessTable
from daemon.tools.turn_context import ToolTurn

MAX_WAIT_S = 300.0
# Once the shell has exited, how long to let its last output arrive.
_DRAIN_S = 1.0

DESCRIPTION = (
    "Check a background command started by execute with `background: true`: whether it "
    "is `running`, its `exitCode` once it has exited, and its combined output so far "
    "(head and tail kept when long; `truncated` is then true). Set `wait_s` to wait up "
    "to that many seconds for it to exit, or `stop: true` to stop it and everything it "
    "started."
)


class ProcessOutputArgs(ToolArgs):
    process_id: str = Field(
        alias="processId",
        min_length=1,
        max_length=100,
        description="The processId execute returned.",
    )
    wait_s: float = Field(
        0.0,
        ge=0,
        le=MAX_WAIT_S,
        description=f"Seconds to wait for the process to exit (at most {MAX_WAIT_S:g}).",
    )
    stop: bool = Field(
        False, description="Stop the process (SIGTERM, then SIGKILL) before reporting."
    )


def process_output_tool(processes: ProcessTable) -> Tool:
    """The ``process_output`` tool, reading this chat's entries of ``processes``."""

    async def process_output(args: ProcessOutputArgs, turn: ToolTurn) -> dict[str, Any]:
        process_id, wait_s, stop = args.process_id, args.wait_s, args.stop
        process = processes.get(turn.chat_id, process_id)
        shell = process.shell
        if stop:
            await processes.stop(process)
        elif wait_s > 0:
            await shell.wait_exit(wait_s)
        running = shell.returncode is None
        if not running:
            await shell.wait_output_closed(_DRAIN_S)
        return {
            "processId": process.id,
            "running": running,
            "exitCode": shell.returncode,
            "output": shell.output.text(),
            "truncated": shell.output.truncated,
        }

    return Tool.declare(
        "process_output", DESCRIPTION, ProcessOutputArgs, process_output, MAX_WAIT_S + 30
    )
