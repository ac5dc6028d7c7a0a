"""The ``execute`` tool: a shell command in the chat's workspace.

A foreground command is bounded by its timeout and its output cap; on timeout
its whole process group is killed, so a hung child can't outlive the call. A
background command is handed to the ``ProcessTable`` and read later with
``process_output``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import Tool, ToolArgs
from daemon.tools.paths import workspace_root
from daemon.tools.processes import OUTPUT_LIMIT, CappedOutput, ProcessTable, ShellProcess
from daemon.tools.turn_context import ToolTurn
from db.vocabulary import WORKSPACE_MOUNT

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
# The kernel refuses a single argument longer than 128 KiB; half is plenty for a command.
COMMAND_MAX = 64 * 1024
# How long a killed command may take to be reaped before the call returns anyway.
_REAP_S = 5.0

DESCRIPTION = (
    f"Run a shell command with /bin/sh -c in the chat's workspace, {WORKSPACE_MOUNT}, inside "
    "a sandbox: only the workspace (read-only in plan mode and for explore agents) and a "
    "private /tmp are writable, the network is off "
    "unless the operator allowed it, and the rest of the server is out of reach. Returns "
    "`exitCode`, the combined stdout and stderr as `output` (capped at "
    f"{OUTPUT_LIMIT // 1024} KiB: the head and tail are kept around an 'N bytes omitted' "
    "marker, and `truncated` is true), and `timedOut`. stdin is empty; nothing can be "
    "answered interactively. When the command ends or times out, every process it "
    "started is killed. For servers and watchers set `background: true`: the call returns "
    "a `processId` at once; read the output with process_output."
)


class ExecuteArgs(ToolArgs):
    command: str = Field(
        min_length=1, max_length=COMMAND_MAX, description="The shell command line to run."
    )
    timeout_s: float = Field(
        DEFAULT_TIMEOUT_S,
        gt=0,
        le=MAX_TIMEOUT_S,
        description=f"Seconds before a foreground command is killed (at most {MAX_TIMEOUT_S:g}).",
    )
    background: bool = Field(
        False, description="Start the command and return its processId at once."
    )


def execute_tool(processes: ProcessTable) -> Tool:
    """The ``execute`` tool, starting background commands in ``processes``."""

    async def execute(args: ExecuteArgs, turn: ToolTurn) -> dict[str, Any]:
        command, timeout_s, background = args.command, args.timeout_s, args.background
        cwd = workspace_root(turn)
        writable = workspace_writable(turn)
        if background:
            process = await processes.start(turn.chat_id, command, cwd, writable=writable)
            return {"processId": process.id}
        shell = await processes.spawn(command, cwd, CappedOutput(), writable=writable)
        return await run_foreground(shell, timeout_s)

    # The registry's own limit must not cut a command short of its timeout.
    return Tool.declare("execute", DESCRIPTION, ExecuteArgs, execute, MAX_TIMEOUT_S + 30)


def workspace_writable(turn: ToolTurn) -> bool:
    """Plan mode and explore agents change no workspace file with commands (plan mode
    writes its plan with write_file): they see the workspace read-only."""
    policy = getattr(turn, "policy", None)
    explore = isinstance(policy, ToolPolicy) and policy.explore
    return not (turn.plan_mode or explore)


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
