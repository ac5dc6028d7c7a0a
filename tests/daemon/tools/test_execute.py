"""execute: shell commands in the workspace, bounded in time and output."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from daemon.tool_registry import ToolError
from daemon.tools.execute import execute_tool
from daemon.tools.processes import OUTPUT_LIMIT, ProcessTable
from tests.daemon.tools.workspace_turn import FakeTurn, exits


@pytest.fixture
def execute(processes: ProcessTable):
    return execute_tool(processes).run


async def test_exit_code_and_combined_output(execute, turn: FakeTurn) -> None:
    result = await execute({"command": "echo out; echo err >&2; exit 3"}, turn)
    assert result == {"exitCode": 3, "output": "out\nerr\n", "truncated": False, "timedOut": False}


async def test_runs_in_the_workspace_with_pagers_disabled(
    execute, workspace: Path, turn: FakeTurn
) -> None:
    result = await execute({"command": 'pwd; echo "$TERM $PAGER $GIT_PAGER"'}, turn)
    assert result["output"] == f"{workspace}\ndumb cat cat\n"
    assert result["exitCode"] == 0


async def test_stdin_is_empty(execute, turn: FakeTurn) -> None:
    result = await execute({"command": "cat; echo done"}, turn)
    assert result["output"] == "done\n"


async def test_timeout_kills_the_whole_process_group(
    execute, workspace: Path, turn: FakeTurn
) -> None:
    command = "sleep 30 & echo $! > child.pid; echo started; wait"

    result = await execute({"command": command, "timeout_s": 0.5}, turn)

    assert result["timedOut"] is True
    assert result["exitCode"] == -9
    assert result["output"] == "started\n"
    assert await exits(int((workspace / "child.pid").read_text()))


async def test_children_left_behind_are_killed_when_the_command_ends(
    execute, turn: FakeTurn
) -> None:
    result = await execute({"command": "sleep 30 & echo $!"}, turn)

    assert (result["exitCode"], result["timedOut"]) == (0, False)
    assert await exits(int(result["output"]))


async def test_cancelling_the_call_kills_the_command(
    execute, workspace: Path, turn: FakeTurn
) -> None:
    fifo = workspace / "pid.fifo"
    os.mkfifo(fifo)
    call = asyncio.create_task(execute({"command": "sleep 30 & echo $! > pid.fifo; wait"}, turn))
    pid = int(await asyncio.to_thread(fifo.read_text))  # blocks until the command writes

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    assert await exits(pid)


async def test_long_output_keeps_head_and_tail(execute, turn: FakeTurn) -> None:
    result = await execute({"command": "seq 1 100000"}, turn)
    output = result["output"]

    assert result["truncated"] is True
    assert output.startswith("1\n2\n3\n")
    assert output.endswith("99999\n100000\n")
    omitted = len("".join(f"{i}\n" for i in range(1, 100001))) - OUTPUT_LIMIT
    assert f"\n… {omitted} bytes omitted …\n" in output


async def test_background_returns_a_process_id_at_once(
    execute, processes: ProcessTable, turn: FakeTurn
) -> None:
    result = await execute({"command": "sleep 30", "background": True}, turn)

    process = processes.get(turn.chat_id, result["processId"])
    assert result == {"processId": process.id}
    assert process.shell.returncode is None


async def test_timeout_is_bounded(execute, turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="'timeout_s' must be above 0 and at most 600"):
        await execute({"command": "true", "timeout_s": 601}, turn)


async def test_no_workspace_is_explained(execute) -> None:
    with pytest.raises(ToolError, match="this chat has no workspace; create one first"):
        await execute({"command": "true"}, FakeTurn(workspace_dir=None))
