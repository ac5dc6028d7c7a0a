"""execute: shell commands in the sandboxed workspace, bounded in time and output."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import ToolError
from daemon.tools.execute import execute_tool
from daemon.tools.processes import OUTPUT_LIMIT, ProcessTable
from tests.daemon.tools.sandboxed import needs_bwrap, sleep_marker, started
from tests.daemon.tools.workspace_turn import FakeTurn, exits

pytestmark = needs_bwrap


@pytest.fixture
def execute(processes: ProcessTable):
    return execute_tool(processes).run


async def test_exit_code_and_combined_output(execute, turn: FakeTurn) -> None:
    result = await execute({"command": "echo out; echo err >&2; exit 3"}, turn)
    assert result == {"exitCode": 3, "output": "out\nerr\n", "truncated": False, "timedOut": False}


async def test_runs_in_the_workspace_mount_with_pagers_disabled(
    execute, workspace: Path, turn: FakeTurn
) -> None:
    (workspace / "hello.txt").write_text("hi\n")
    command = 'pwd; cat hello.txt; echo "$TERM $PAGER $GIT_PAGER"; echo made > new.txt'

    result = await execute({"command": command}, turn)

    assert result["output"] == "/workspace\nhi\ndumb cat cat\n"
    assert result["exitCode"] == 0
    assert (workspace / "new.txt").read_text() == "made\n"


async def test_stdin_is_empty(execute, turn: FakeTurn) -> None:
    result = await execute({"command": "cat; echo done"}, turn)
    assert result["output"] == "done\n"


async def test_timeout_kills_every_process_of_the_command(execute, turn: FakeTurn) -> None:
    marker = sleep_marker()
    command = f"sleep {marker} & sleep {marker} & echo started; wait"
    call = asyncio.create_task(execute({"command": command, "timeout_s": 3}, turn))
    pids = await started(marker, count=2)

    result = await call

    assert result["timedOut"] is True
    assert result["exitCode"] == -9
    assert result["output"] == "started\n"
    assert [await exits(pid) for pid in pids] == [True, True]


async def test_a_child_that_leaves_the_process_group_dies_too(execute, turn: FakeTurn) -> None:
    marker = sleep_marker()
    command = f"setsid sleep {marker} & echo started; wait"
    call = asyncio.create_task(execute({"command": command, "timeout_s": 3}, turn))
    (pid,) = await started(marker)

    result = await call

    assert result["timedOut"] is True
    assert await exits(pid)


async def test_children_left_behind_are_killed_when_the_command_ends(
    execute, workspace: Path, turn: FakeTurn
) -> None:
    marker = sleep_marker()
    os.mkfifo(workspace / "go.fifo")
    call = asyncio.create_task(execute({"command": f"sleep {marker} & read x < go.fifo"}, turn))
    (pid,) = await started(marker)
    await asyncio.to_thread((workspace / "go.fifo").write_text, "go\n")  # the command may end

    result = await call

    assert (result["exitCode"], result["timedOut"]) == (0, False)
    assert await exits(pid)


async def test_cancelling_the_call_kills_the_command(execute, turn: FakeTurn) -> None:
    marker = sleep_marker()
    call = asyncio.create_task(execute({"command": f"sleep {marker} & wait"}, turn))
    (pid,) = await started(marker)

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


@dataclass
class ExploreTurn(FakeTurn):
    policy: ToolPolicy = field(default_factory=lambda: ToolPolicy(False, True, False))


@pytest.mark.parametrize(
    "reader",
    [
        lambda root: FakeTurn(workspace_dir=root, plan_mode=True),
        lambda root: ExploreTurn(workspace_dir=root),
    ],
    ids=["plan-mode", "explore"],
)
async def test_plan_mode_and_explore_agents_only_read(
    execute, workspace: Path, reader: Callable[[Path], FakeTurn]
) -> None:
    (workspace / "src.txt").write_text("original\n")
    command = "cat src.txt; echo changed > src.txt; touch new.txt; echo scratch > /tmp/s && echo ok"
    result = await execute({"command": command}, reader(workspace))

    assert result["output"].startswith("original\n")
    assert result["output"].endswith("ok\n")
    assert "Read-only file system" in result["output"]
    assert (workspace / "src.txt").read_text() == "original\n"
    assert not (workspace / "new.txt").exists()
