"""process_output: a chat reads, waits on and stops only its own background commands."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from daemon.tool_registry import ToolError
from daemon.tools.execute import execute_tool
from daemon.tools.process_output import process_output_tool
from daemon.tools.processes import ProcessTable
from tests.daemon.tools.sandboxed import needs_bwrap, sleep_marker, started
from tests.daemon.tools.workspace_turn import FakeTurn, exits

pytestmark = needs_bwrap


@pytest.fixture
def execute(processes: ProcessTable):
    return execute_tool(processes).run


@pytest.fixture
def process_output(processes: ProcessTable):
    return process_output_tool(processes).run


async def start(execute, turn: FakeTurn, command: str) -> str:
    return (await execute({"command": command, "background": True}, turn))["processId"]


async def test_waiting_returns_the_finished_output(execute, process_output, turn: FakeTurn) -> None:
    process_id = await start(execute, turn, "echo building; echo failed >&2; exit 4")

    result = await process_output({"processId": process_id, "wait_s": 30}, turn)

    assert result == {
        "processId": process_id,
        "running": False,
        "exitCode": 4,
        "output": "building\nfailed\n",
        "truncated": False,
    }


async def test_a_running_process_reports_running(
    execute, process_output, processes: ProcessTable, turn: FakeTurn
) -> None:
    process_id = await start(execute, turn, "sleep 30")

    started = time.monotonic()
    result = await process_output({"processId": process_id, "wait_s": 0.2}, turn)

    assert time.monotonic() - started >= 0.15
    assert (result["running"], result["exitCode"]) == (True, None)


async def test_stop_ends_the_process_and_its_children(
    execute, process_output, processes: ProcessTable, workspace: Path, turn: FakeTurn
) -> None:
    marker = sleep_marker()
    process_id = await start(execute, turn, f"sleep {marker} & wait")
    (child,) = await started(marker)  # its host pid: $! is the sandbox's own
    shell_pid = processes.get(turn.chat_id, process_id).shell.pid

    result = await process_output({"processId": process_id, "stop": True}, turn)

    assert (result["running"], result["exitCode"]) == (False, -15)
    assert await exits(shell_pid)
    assert await exits(child)


async def test_another_chats_process_is_unknown(
    execute, process_output, workspace: Path, turn: FakeTurn
) -> None:
    process_id = await start(execute, turn, "echo private")
    stranger = FakeTurn(workspace_dir=workspace, chat_id=uuid.uuid4())

    with pytest.raises(ToolError, match="unknown process"):
        await process_output({"processId": process_id}, stranger)


async def test_processes_of_a_finished_turn_are_gone(
    execute, process_output, processes: ProcessTable, turn: FakeTurn
) -> None:
    process_id = await start(execute, turn, "sleep 30")
    pid = processes.get(turn.chat_id, process_id).shell.pid

    await processes.kill_chat(turn.chat_id)

    assert await exits(pid)
    with pytest.raises(ToolError, match="unknown process"):
        await process_output({"processId": process_id}, turn)


async def test_retained_output_is_capped(workspace: Path, turn: FakeTurn) -> None:
    table = ProcessTable(output_limit=100)
    try:
        read = process_output_tool(table).run
        process = await table.start(turn.chat_id, "seq 1 1000", workspace)

        result = await read({"processId": process.id, "wait_s": 30}, turn)
    finally:
        await table.close_all()

    assert result["truncated"] is True
    assert result["output"].startswith("1\n2\n")
    assert result["output"].endswith("999\n1000\n")
    assert "bytes omitted" in result["output"]
