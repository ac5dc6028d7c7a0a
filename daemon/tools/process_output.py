"""The ``process_output`` tool: check on a background command of this chat.

Waiting happens here, bounded by ``wait_s``, so the model can wait for a build
or a test run without sleeping in a foreground shell.
"""

from __future__ import annotations

from typing import Any

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool
from daemon.tools.processes import ProcessTable
from daemon.tools.turn_context import ToolTurn, optional_bool, optional_number, require_str

MAX_WAIT_S = 300.0
# Once the shell has exited, how long to let its last output arrive.
_DRAIN_S = 1.0

SPEC = ToolSpec(
    name="process_output",
    description=(
        "Check a background command started by execute with `background: true`: whether it "
        "is `running`, its `exitCode` once it has exited, and its combined output so far "
        "(head and tail kept when long; `truncated` is then true). Set `wait_s` to wait up "
        "to that many seconds for it to exit, or `stop: true` to stop it and everything it "
        "started."
    ),
    parameters={
        "type": "object",
        "properties": {
            "processId": {"type": "string", "description": "The processId execute returned."},
            "wait_s": {
                "type": "number",
                "minimum": 0,
                "maximum": MAX_WAIT_S,
                "description": f"Seconds to wait for the process to exit (default 0, "
                f"at most {MAX_WAIT_S:g}).",
            },
            "stop": {
                "type": "boolean",
                "description": "Stop the process (SIGTERM, then SIGKILL) before reporting.",
            },
        },
        "required": ["processId"],
        "additionalProperties": False,
    },
)


def process_output_tool(processes: ProcessTable) -> Tool:
    """The ``process_output`` tool, reading this chat's entries of ``processes``."""

    async def process_output(args: dict[str, Any], turn: ToolTurn) -> dict[str, Any]:
        process_id = require_str(args, "processId")
        wait_s = optional_number(args, "wait_s", 0.0, minimum=0, maximum=MAX_WAIT_S)
        stop = optional_bool(args, "stop", False)
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

    return Tool(spec=SPEC, run=process_output, timeout_s=MAX_WAIT_S + 30)
