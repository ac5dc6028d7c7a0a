"""The control group around each sandbox: a fork bomb or a memory hog spread over
many processes stays inside its share, and nothing of it outlives the command.
Real bubblewrap, real cgroups; the cgroup assertions run wherever the host has
a writable hierarchy (it has in CI)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon import sandbox_cgroup
from daemon.sandbox import Sandbox, SandboxLimits, SandboxSettings
from daemon.sandbox_cgroup import CHILD_PREFIX, PARENT_PREFIX
from daemon.tools.processes import ProcessTable
from tests.daemon.test_sandbox import _alive_with, _none_left, run
from tests.daemon.tools.sandboxed import needs_bwrap


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspaces" / "mine"
    root.mkdir(parents=True)
    return root


@pytest.fixture
async def table() -> AsyncIterator[ProcessTable]:
    table = ProcessTable(sandbox=Sandbox(SandboxSettings(limits=SandboxLimits(processes=48))))
    await table.sandbox.ready()
    try:
        yield table
    finally:
        await table.close_all()


def children(sandbox: Sandbox) -> set[Path]:
    """The per-command cgroup directories that exist now."""
    if sandbox.cgroups is None:
        return set()
    return {c for p in sandbox.cgroups.parents.values() for c in p.glob(f"{CHILD_PREFIX}*")}


async def gone(paths: set[Path], within_s: float = 10.0) -> bool:
    async with asyncio.timeout(within_s):
        while True:
            if not any(p.exists() for p in paths):
                return True
            await asyncio.sleep(0.05)


def count(cgroup: Path) -> int:
    try:
        return len((cgroup / "cgroup.procs").read_text().split())
    except FileNotFoundError:
        return 0


@needs_bwrap
async def test_a_fork_bomb_stays_within_its_process_limit_and_the_host_can_still_fork(
    workspace: Path, table: ProcessTable
) -> None:
    limit = table.sandbox.settings.limits.processes
    marker = "forkbomb_" + os.urandom(4).hex()
    before = children(table.sandbox)
    bomb = f"{marker}() {{ {marker} | {marker} & }}; {marker}; sleep 600"

    started = await table.start(uuid.uuid4(), bomb, workspace)
    mine = children(table.sandbox) - before
    peak_marked, peak_inside, forked = 0, 0, 0
    # Read while the command runs: its cgroup is removed as soon as it ends.
    caps = {(c / "pids.max").read_text().strip() for c in mine if (c / "pids.max").exists()}
    for _ in range(40):
        peak_marked = max(peak_marked, len(_alive_with(marker.encode())))
        peak_inside = max([peak_inside, *(count(c) for c in mine)])
        host = await asyncio.create_subprocess_exec("true")
        forked += await host.wait() == 0
        await asyncio.sleep(0.05)
    assert started.shell.returncode is None  # still bombing all along
    await table.close_all()

    assert forked == 40
    # Every process of the sandbox, bwrap included, carries the marker in its argv.
    assert 1 <= peak_marked <= limit
    if table.sandbox.cgroups is not None:
        assert caps == {str(limit)}
        assert 1 <= peak_inside <= limit
        assert await gone(mine)
    assert await _none_left(marker)


@needs_bwrap
async def test_memory_spread_over_many_processes_is_capped_as_a_whole(workspace: Path) -> None:
    # Each process stays under its own 64 MiB RLIMIT_DATA; together they'd hold 192.
    limits = SandboxLimits(memory_mb=64)
    sandbox = Sandbox(SandboxSettings(limits=limits))
    hold = "import time; a = b'x' * (40 << 20); time.sleep(3); print('held', flush=True)"
    command = f'for i in 1 2 3 4; do python3 -c "{hold}" & done; wait'

    result = await run(command, workspace, sandbox)

    held = result["output"].count("held")
    if sandbox.cgroups is not None and "memory" in sandbox.cgroups.parents:
        assert held < 4
    else:
        assert held == 4  # per process only, as documented


@needs_bwrap
async def test_a_commands_cgroup_goes_when_it_ends(workspace: Path, table: ProcessTable) -> None:
    before = children(table.sandbox)
    result = await run("echo done", workspace, table.sandbox)
    assert result["output"] == "done\n"
    if table.sandbox.cgroups is not None:
        assert await gone(children(table.sandbox) - before)
        assert all(p.is_dir() for p in table.sandbox.cgroups.parents.values())


@needs_bwrap
async def test_leftovers_of_a_dead_server_are_removed(table: ProcessTable) -> None:
    if table.sandbox.cgroups is None:
        return
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    base = table.sandbox.cgroups.parents["pids"].parent
    leftover = base / f"{PARENT_PREFIX}{dead.pid}"
    (leftover / f"{CHILD_PREFIX}7").mkdir(parents=True)

    sandbox_cgroup.sweep_dead(base)

    assert not leftover.exists()
    assert table.sandbox.cgroups.parents["pids"].is_dir()  # ours stays


@needs_bwrap
async def test_without_a_cgroup_commands_run_and_the_start_log_says_what_holds(
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sandbox_cgroup, "CGROUP_ROOT", tmp_path / "no-cgroups")
    monkeypatch.setattr(sandbox_cgroup, "_found", [])
    sandbox = Sandbox()

    with caplog.at_level(logging.INFO, logger="daemon.sandbox"):
        await sandbox.announce()

    assert sandbox.cgroups is None
    if os.geteuid() == 0:
        assert "ignores for root" in caplog.text
    assert (await run("echo alive", workspace, sandbox))["output"] == "alive\n"


@needs_bwrap
async def test_the_start_log_says_which_limits_hold(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = Sandbox(SandboxSettings(limits=SandboxLimits(processes=48, memory_mb=300)))
    with caplog.at_level(logging.INFO, logger="daemon.sandbox"):
        await sandbox.announce()
    if sandbox.cgroups is not None:
        assert "limited to 48 processes and 300 MiB in all by cgroup" in caplog.text
    elif os.geteuid() == 0:
        assert "ignores for root" in caplog.text
