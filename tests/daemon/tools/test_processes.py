"""The process table and captured output: bounded memory, processes stopped on demand."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from daemon.sandbox import command_env
from daemon.tool_registry import ToolError
from daemon.tools.processes import CappedOutput, ProcessTable
from tests.daemon.tools.sandboxed import needs_bwrap, sleep_marker, started
from tests.daemon.tools.workspace_turn import exits, is_running


def test_output_under_the_cap_is_kept_whole() -> None:
    output = CappedOutput(limit=10)
    output.append(b"hello ")
    output.append(b"you")
    assert (output.text(), output.truncated) == ("hello you", False)


def test_output_over_the_cap_keeps_head_and_tail() -> None:
    output = CappedOutput(limit=10)
    for chunk in (b"01234", b"56789abcdef", b"ghijklmnopqrstuvwxyz"):
        output.append(chunk)

    assert output.truncated is True
    assert output.text() == "01234\n… 26 bytes omitted …\nvwxyz"


@needs_bwrap
async def test_kill_chat_stops_only_that_chats_processes(
    processes: ProcessTable, workspace: Path
) -> None:
    chat, other = uuid.uuid4(), uuid.uuid4()
    mine = await processes.start(chat, "sleep 30", workspace)
    theirs = await processes.start(other, "sleep 30", workspace)

    await processes.kill_chat(chat)

    assert await exits(mine.shell.pid)
    assert is_running(theirs.shell.pid)
    with pytest.raises(ToolError, match="unknown process"):
        processes.get(chat, mine.id)
    assert processes.get(other, theirs.id) is theirs


@needs_bwrap
async def test_close_all_stops_everything_including_children(workspace: Path) -> None:
    table = ProcessTable()
    marker = sleep_marker()
    first = await table.start(uuid.uuid4(), "sleep 30", workspace)
    second = await table.start(uuid.uuid4(), f"sleep {marker} & wait", workspace)
    (child,) = await started(marker)

    await table.close_all()

    assert await exits(first.shell.pid)
    assert await exits(second.shell.pid)
    assert await exits(child)
    assert table.for_chat(first.chat_id) == []


@needs_bwrap
async def test_a_process_ignoring_sigterm_is_killed(workspace: Path) -> None:
    table = ProcessTable(stop_grace_s=0.2)
    marker = sleep_marker()
    command = f"trap '' TERM; (trap '' TERM; exec sleep {marker}) & wait"
    stubborn = await table.start(uuid.uuid4(), command, workspace)
    (child,) = await started(marker)

    await table.close_all()

    assert await exits(stubborn.shell.pid)
    assert await exits(child)


@needs_bwrap
async def test_running_processes_per_chat_are_limited(
    workspace: Path,
) -> None:
    table = ProcessTable(max_running_per_chat=1)
    chat = uuid.uuid4()
    try:
        await table.start(chat, "sleep 30", workspace)
        with pytest.raises(ToolError, match="already runs 1 background processes"):
            await table.start(chat, "sleep 30", workspace)
        await table.start(uuid.uuid4(), "sleep 30", workspace)  # other chats are unaffected
    finally:
        await table.close_all()


def test_commands_do_not_see_the_servers_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTGQL_SECRET_KEY", "s3cret")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:pw@db/x")
    monkeypatch.setenv("PGPASSWORD", "pw")
    monkeypatch.setenv("HOME_COLOUR", "blue")
    env = command_env()
    assert "AGENTGQL_SECRET_KEY" not in env
    assert "DATABASE_URL" not in env
    assert "PGPASSWORD" not in env
    assert env["HOME_COLOUR"] == "blue"
    assert env["PAGER"] == "cat"
