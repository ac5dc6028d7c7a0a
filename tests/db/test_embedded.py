"""The zero-configuration path: an embedded cluster, shared by processes on one
data directory, and ``agentgql serve`` with no settings at all."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from db.embedded import EmbeddedCluster
from tests.harness import SIGN_UP

ROOT = Path(__file__).resolve().parents[2]
JOIN = """
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from db.embedded import EmbeddedCluster
from tests.harness import SIGN_UP
c = EmbeddedCluster(Path(sys.argv[1]))
print(c.start())
"""


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A data dir outside pytest's tmp root: pytest resets that root to mode 0700,
    which the cluster's own system user (as root it runs as one) cannot traverse."""
    path = Path(tempfile.mkdtemp(prefix="agentgql-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def test_second_process_joins_the_running_cluster(cluster_dir: Path) -> None:
    tmp_path = cluster_dir
    cluster = EmbeddedCluster(tmp_path)
    uri = cluster.start()
    pid = _postmaster_pid(tmp_path)
    try:
        joined = subprocess.run(
            [sys.executable, "-c", JOIN, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert joined.stdout.strip() == uri
        # The joiner left; the cluster it did not start keeps running.
        assert psutil.pid_exists(pid)
        assert _postmaster_pid(tmp_path) == pid
    finally:
        cluster.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[str], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


def _serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    """``agentgql serve`` with no configuration but the data dir and the port."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROADCAST_URL"}}
    command = ["serve", "--data-dir", str(data_dir), "--port", str(port)]
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *command],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def test_serve_with_no_configuration(cluster_dir: Path) -> None:
    tmp_path = cluster_dir
    port = _free_port()
    proc = _serve(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        signed = httpx.post(
            f"{base}/graphql",
            json={"query": SIGN_UP, "variables": {"u": "root", "p": "first-admin-pw"}},
        ).json()
        token = signed["data"]["signUp"]["token"]
        viewer = httpx.post(
            f"{base}/graphql",
            json={"query": "{ viewer { user { username role } } }"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert viewer["data"]["viewer"]["user"] == {"username": "root", "role": "ADMIN"}
        assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
        pid = _postmaster_pid(tmp_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    # uvicorn re-raises the signal after a graceful shutdown.
    assert proc.returncode in {0, -signal.SIGTERM}, stderr
    assert "Application shutdown complete" in stderr
    assert f"GraphiQL at http://127.0.0.1:{port}/graphql" in stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# A process that starts the cluster and holds it until it is killed, as a crashed
# `agentgql serve` would have.
HOLDER = """
import sys
from pathlib import Path
from db.embedded import EmbeddedCluster
print(EmbeddedCluster(Path(sys.argv[1])).start(), flush=True)
sys.stdin.read()
"""


def _our_postgres(data_dir: Path) -> list[int]:
    """Live postmasters (not zombies) whose data directory is ``data_dir``'s cluster."""
    pgdata = str((data_dir / "postgres").resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        info = proc.info
        live = info["status"] != psutil.STATUS_ZOMBIE
        if info["name"] == "postgres" and live and pgdata in (info["cmdline"] or []):
            found.append(proc.pid)
    return found


def _start_and_kill_holder(data_dir: Path) -> int:
    """Start the cluster from a process, SIGKILL that process; the leftover's pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 60)
        assert ready, "the cluster did not start"
        assert holder.stdout.readline().startswith("postgresql://")
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    leftover = _postmaster_pid(data_dir)
    assert _our_postgres(data_dir) == [leftover]
    return leftover


def test_a_start_after_a_crash_replaces_the_leftover_and_stop_stops_it(cluster_dir: Path) -> None:
    leftover = _start_and_kill_holder(cluster_dir)

    cluster = EmbeddedCluster(cluster_dir)
    uri = cluster.start()
    try:
        fresh = _postmaster_pid(cluster_dir)
        assert fresh != leftover
        assert _our_postgres(cluster_dir) == [fresh]
        assert asyncio.run(_select_one(uri)) == 1
    finally:
        cluster.stop()
    assert _our_postgres(cluster_dir) == []
    assert not (cluster_dir / "postgres" / "postmaster.pid").exists()


async def _select_one(uri: str) -> int:
    conn = await asyncpg.connect(uri)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def test_serve_after_a_crash_replaces_the_leftover_and_stops_it_on_shutdown(
    cluster_dir: Path,
) -> None:
    # The crashed process is a bare cluster holder rather than a second `serve`:
    # the cluster sees the same thing, and one server start is slow enough.
    leftover = _start_and_kill_holder(cluster_dir)

    port = _free_port()
    restarted = _serve(cluster_dir, port)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", restarted)
        fresh = _postmaster_pid(cluster_dir)
        assert fresh != leftover
        assert _our_postgres(cluster_dir) == [fresh]
    finally:
        restarted.send_signal(signal.SIGTERM)
        _, stderr = restarted.communicate(timeout=60)
    assert "stopping a leftover embedded postgres" in stderr
    assert "Application shutdown complete" in stderr
    assert _our_postgres(cluster_dir) == []
