"""execute and process_output on both event loops the server runs on.

``agentgql serve`` runs uvloop, whose subprocess transport is not an
``asyncio.SubprocessTransport``; every call there used to fail after the
command had already started, with no timeout or output cap applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from daemon.tools.execute import execute_tool
from daemon.tools.process_output import process_output_tool
from daemon.tools.processes import OUTPUT_LIMIT, ProcessTable
from tests.daemon.tools.sandboxed import needs_bwrap
from tests.daemon.tools.workspace_turn import FakeTurn

pytestmark = needs_bwrap

Runner = Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]]
LOOPS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Runner:
    return LOOPS[request.param]


async def _session(workspace: Path) -> dict[str, Any]:
    """Every way the model uses the shell, on whatever loop runs this."""
    table = ProcessTable(stop_grace_s=0.2)
    execute = execute_tool(table).run
    read = process_output_tool(table).run
    turn = FakeTurn(workspace_dir=workspace)
    try:
        plain = await execute({"command": "pwd; echo err >&2; exit 4"}, turn)
        slow = await execute({"command": "echo started; sleep 30", "timeout_s": 1}, turn)
        chatty = await execute({"command": "seq 1 100000"}, turn)
        finished = (await execute({"command": "echo bg", "background": True}, turn))["processId"]
        done = await read({"processId": finished, "wait_s": 30}, turn)
        running = (await execute({"command": "sleep 30", "background": True}, turn))["processId"]
        waited = await read({"processId": running, "wait_s": 0.1}, turn)
        stopped = await read({"processId": running, "stop": True}, turn)
    finally:
        await table.close_all()
    return {
        "plain": plain,
        "slow": slow,
        "chatty": chatty,
        "done": done,
        "waited": waited,
        "stopped": stopped,
    }


def test_the_shell_tools_work_on_both_loops(run: Runner, tmp_path: Path) -> None:
    seen = run(_session(tmp_path))

    assert seen["plain"] == {
        "exitCode": 4,
        "output": "/workspace\nerr\n",
        "truncated": False,
        "timedOut": False,
    }
    assert seen["slow"] == {
        "exitCode": -9,
        "output": "started\n",
        "truncated": False,
        "timedOut": True,
    }
    assert seen["chatty"]["truncated"] is True
    assert len(seen["chatty"]["output"].encode()) < OUTPUT_LIMIT + 100
    assert seen["chatty"]["output"].endswith("99999\n100000\n")
    assert (seen["done"]["running"], seen["done"]["exitCode"], seen["done"]["output"]) == (
        False,
        0,
        "bg\n",
    )
    assert (seen["waited"]["running"], seen["waited"]["exitCode"]) == (True, None)
    assert (seen["stopped"]["running"], seen["stopped"]["exitCode"]) == (False, -15)
