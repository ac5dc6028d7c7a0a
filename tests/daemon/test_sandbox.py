"""The sandbox itself: what a command can see, reach and use up, and what happens
when there is no sandbox. Real bubblewrap, real processes."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon.sandbox import Sandbox, SandboxLimits, SandboxSettings
from daemon.tool_registry import ToolError
from daemon.tools.execute import execute_tool
from daemon.tools.processes import ProcessTable
from daemon.workspace_backend import LocalWorkspaceBackend
from daemon.workspace_services import WorkspaceServices
from events.announcer import ChatAnnouncer
from events.hub import EventHub
from server.settings import Settings
from tests.daemon.tools.sandboxed import needs_bwrap
from tests.daemon.tools.workspace_turn import FakeTurn


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspaces" / "mine"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def neighbour(tmp_path: Path) -> Path:
    """Another workspace and a secret key beside the workspaces, as in a data dir."""
    other = tmp_path / "workspaces" / "theirs"
    other.mkdir(parents=True)
    (other / "private.txt").write_text("their code\n")
    (tmp_path / "secret.key").write_text("the-secret-key\n")
    return other


async def run(
    command: str, workspace: Path, sandbox: Sandbox | None = None, timeout_s: float = 30
) -> dict[str, Any]:
    table = ProcessTable(sandbox=sandbox or Sandbox())
    try:
        execute = execute_tool(table).run
        turn = FakeTurn(workspace_dir=workspace)
        result: dict[str, Any] = await execute({"command": command, "timeout_s": timeout_s}, turn)
        return result
    finally:
        await table.close_all()


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    """A TCP port on the host's loopback that accepts connections."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def connect_command(port: int) -> str:
    return f"bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo CONNECTED"


# -- what a command sees ---------------------------------------------------------------


@needs_bwrap
async def test_the_host_outside_the_workspace_is_absent(
    workspace: Path, neighbour: Path, tmp_path: Path
) -> None:
    command = "; ".join(
        [
            f"cat {tmp_path}/secret.key",
            "cat ../../secret.key",
            f"cat {neighbour}/private.txt",
            f"ls {tmp_path}",
            f"cat /proc/{os.getpid()}/environ",
            "echo '== processes'",
            "ls /proc | grep '^[0-9]' | wc -l",
            "echo '== etc'",
            "ls /etc",
            "echo '== uid'",
            "id -u",
        ]
    )
    result = await run(command, workspace)
    output, sections = result["output"], _sections(result["output"])

    assert "the-secret-key" not in output
    assert "their code" not in output
    assert "No such file or directory" in output
    # Only the sandbox's own processes exist: its init, the shell, ls, grep and wc.
    assert int(sections["processes"][0]) <= 5
    assert sections["uid"] == ["1000"]
    assert {"passwd", "group", "hosts"} <= set(sections["etc"])
    assert not {"shadow", "gshadow", "ssh", "sudoers", "environment"} & set(sections["etc"])


def _sections(output: str) -> dict[str, list[str]]:
    """The lines after each ``== name`` line, by name."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("== "):
            current = sections.setdefault(line[3:], [])
        else:
            current.append(line)
    return sections


@needs_bwrap
async def test_writes_land_only_in_the_workspace(workspace: Path, tmp_path: Path) -> None:
    command = (
        f"echo x > {tmp_path}/pwned; echo x > /usr/pwned; echo x > /etc/pwned; "
        "echo x > /tmp/scratch && echo tmp-ok; echo x > inside.txt && echo ws-ok"
    )
    result = await run(command, workspace)

    assert "tmp-ok" in result["output"]
    assert "ws-ok" in result["output"]
    assert not (tmp_path / "pwned").exists()
    assert not _exists("/usr/pwned")
    assert not _exists("/etc/pwned")
    assert (workspace / "inside.txt").read_text() == "x\n"


@needs_bwrap
async def test_the_environment_holds_no_server_secrets(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTGQL_SECRET_KEY", "s3cret-in-env")
    monkeypatch.setenv("SOME_TOKEN", "tok3n-in-env")
    result = await run("env; cat /proc/1/environ; cat /proc/1/cmdline", workspace)

    assert "s3cret-in-env" not in result["output"]
    assert "tok3n-in-env" not in result["output"]
    assert str(workspace) not in result["output"]


def _exists(path: str) -> bool:
    return os.path.exists(path)


# -- what a command reaches ------------------------------------------------------------


@needs_bwrap
async def test_the_network_is_off_by_default(workspace: Path, listener: int) -> None:
    with socket.create_connection(("127.0.0.1", listener), timeout=5):
        pass  # the host itself reaches it
    result = await run(connect_command(listener), workspace)
    assert "CONNECTED" not in result["output"]


@needs_bwrap
async def test_the_operator_can_turn_the_network_on(workspace: Path, listener: int) -> None:
    sandbox = Sandbox(SandboxSettings(network=True))
    result = await run(connect_command(listener), workspace, sandbox)
    assert result["output"] == "CONNECTED\n"


# -- what a command uses up ------------------------------------------------------------


@needs_bwrap
async def test_limits_apply_inside(workspace: Path) -> None:
    limits = SandboxLimits(cpu_s=7, memory_mb=64, processes=50, open_files=100, file_mb=1)
    sandbox = Sandbox(SandboxSettings(limits=limits))
    command = (
        "ulimit -t; ulimit -d; ulimit -n; "
        "python3 -c 'bytearray(256 * 1024 * 1024)' 2>/dev/null || echo no-memory; "
        "head -c 2000000 /dev/zero > big 2>/dev/null || echo file-too-big"
    )
    result = await run(command, workspace, sandbox)

    assert result["output"].splitlines() == ["7", "65536", "100", "no-memory", "file-too-big"]


@needs_bwrap
async def test_cpu_time_is_capped(workspace: Path) -> None:
    sandbox = Sandbox(SandboxSettings(limits=SandboxLimits(cpu_s=1)))
    result = await run("while :; do :; done", workspace, sandbox)
    assert result["timedOut"] is False
    assert result["exitCode"] in (128 + 24, 128 + 9)  # SIGXCPU, then SIGKILL at the hard limit


@needs_bwrap
async def test_a_fork_bomb_is_contained(workspace: Path) -> None:
    sandbox = Sandbox(SandboxSettings(limits=SandboxLimits(processes=64)))
    marker = "forkbomb_" + os.urandom(4).hex()

    bomb = f"{marker}() {{ {marker} | {marker} & }}; {marker}; sleep 30"
    result = await run(bomb, workspace, sandbox, timeout_s=3)

    assert result["timedOut"] is True
    assert await _none_left(marker)
    # The daemon still starts commands afterwards.
    assert (await run("echo alive", workspace))["output"] == "alive\n"


async def _none_left(marker: str, within_s: float = 10.0) -> bool:
    """Whether every process whose command line mentions ``marker`` is gone."""
    wanted = marker.encode()
    async with asyncio.timeout(within_s):
        while True:
            alive = _alive_with(wanted)
            if not alive:
                return True
            await asyncio.sleep(0.05)


def _alive_with(wanted: bytes) -> list[Path]:
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and _mentions(p, wanted)]


def _mentions(entry: Path, wanted: bytes) -> bool:
    try:
        state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X") and wanted in (entry / "cmdline").read_bytes()
    except OSError:
        return False


# -- no sandbox ------------------------------------------------------------------------


async def test_without_bubblewrap_execute_says_so(workspace: Path) -> None:
    sandbox = Sandbox(bwrap="/nonexistent/bwrap")
    with pytest.raises(ToolError, match=r"execute is unavailable.*bubblewrap \(bwrap\) is not"):
        await run("echo hi", workspace, sandbox)
    assert not (workspace / "hi").exists()


async def test_a_bubblewrap_that_fails_its_test_run_disables_execute(workspace: Path) -> None:
    sandbox = Sandbox(bwrap="/bin/false")
    with pytest.raises(ToolError, match="bubblewrap's test run failed") as refused:
        await run("echo hi", workspace, sandbox)
    assert "apt-get install bubblewrap" in str(refused.value)


async def test_none_runs_commands_unsandboxed(
    workspace: Path, neighbour: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = Sandbox(SandboxSettings(mode="none"), bwrap="/nonexistent/bwrap")
    with caplog.at_level(logging.WARNING, logger="daemon.sandbox"):
        await sandbox.announce()
    assert "unsandboxed" in caplog.text

    result = await run(f"pwd; cat {neighbour}/private.txt", workspace, sandbox)

    assert result["output"] == f"{workspace}\ntheir code\n"


async def test_a_missing_sandbox_is_logged_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="daemon.sandbox"):
        await Sandbox(bwrap="/nonexistent/bwrap").announce()
    assert "install bubblewrap (apt-get install bubblewrap)" in caplog.text


# -- the server's own programs over what the model wrote -------------------------------


@needs_bwrap
async def test_git_over_a_planted_config_runs_read_only_inside(
    workspace: Path, tmp_path: Path
) -> None:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=workspace, env=env, check=True, capture_output=True)

    (workspace / "f.txt").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-q", "-m", "init")
    # What a command (or write_file) can plant: a filter git runs on every diff.
    hook = f"touch {tmp_path}/pwned; touch pwned-here; cat"
    git("config", "filter.x.clean", f"sh -c '{hook}'")
    (workspace / ".gitattributes").write_text("* filter=x\n")
    (workspace / "f.txt").write_text("b\n")

    argv = ["git", "diff", "--no-color", "HEAD", "--", "f.txt"]
    with Sandbox().launch_argv(argv, workspace, writable=False) as launch:
        process = await asyncio.create_subprocess_exec(
            *launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            pass_fds=launch.pass_fds,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    out, _ = await process.communicate()

    assert "+b" in out.decode()  # the diff still works
    assert not (tmp_path / "pwned").exists()
    assert not (workspace / "pwned-here").exists()


# -- configuration ---------------------------------------------------------------------


def test_the_environment_configures_the_daemons_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENTGQL_SANDBOX", "none")
    monkeypatch.setenv("AGENTGQL_SANDBOX_NETWORK", "true")
    monkeypatch.setenv("AGENTGQL_SANDBOX_PROCESSES", "32")
    settings = Settings(data_dir=tmp_path, database_url="postgresql://unused/x")

    services = WorkspaceServices(
        LocalWorkspaceBackend(tmp_path / "workspaces"),
        ChatAnnouncer(EventHub("memory://")),
        replace(settings.workspace_settings(), pull_requests=False),
    )

    sandbox = services.processes.sandbox.settings
    assert (sandbox.mode, sandbox.network, sandbox.limits.processes) == ("none", True, 32)
    assert Settings(data_dir=tmp_path).sandbox == "none"
    monkeypatch.delenv("AGENTGQL_SANDBOX")
    assert Settings(data_dir=tmp_path).workspace_settings().sandbox.mode == "bwrap"


@needs_bwrap
async def test_an_older_bubblewrap_runs_without_the_newer_hardening(
    workspace: Path, tmp_path: Path
) -> None:
    real = shutil.which("bwrap")
    old = tmp_path / "old-bwrap"
    old.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --help ]; then echo "usage: bwrap [OPTIONS...] [--] COMMAND"; exit 0; fi\n'
        'for a; do case "$a" in --disable-userns|--size)\n'
        '  echo "bwrap: Unknown option $a" >&2; exit 1;; esac; done\n'
        f'exec {real} "$@"\n'
    )
    old.chmod(0o755)

    result = await run("echo hi > made.txt; cat made.txt", workspace, Sandbox(bwrap=str(old)))

    assert result["output"] == "hi\n"
