"""Starting the processes of a run (two servers, one load generator) and always stopping them.

Each child gets its own session: Ctrl-C in the terminal reaches only the bench,
which then stops every child by its process group, on errors as well. Server
output goes to a log file whose tail is shown if a server fails to come up.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
HEALTH_DEADLINE_S = 60.0
STOP_GRACE_S = 5.0
# Both sides hold the same pool (agentgql's defaults), so neither waits on connections.
POOL_MIN, POOL_MAX = 1, 10
# Settings the bench fixes itself (WEB_CONCURRENCY would give uvicorn more workers).
_OVERRIDDEN = {"DATABASE_URL", "BROADCAST_URL", "WEB_CONCURRENCY"}


class ServerFailed(RuntimeError):
    """A server exited or never answered /healthz; the message carries its log tail."""


@dataclass(frozen=True)
class Server:
    side: str
    host: str
    port: int
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: int | IO[bytes] | None = None,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _wait_healthy(side: str, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"{side} server exited with {process.returncode}:\n{_tail(log)}")
        if _healthy(port):
            return
        time.sleep(0.1)
    raise ServerFailed(f"{side} server not healthy after {HEALTH_DEADLINE_S:.0f} s:\n{_tail(log)}")


@contextmanager
def _running(
    side: str, argv: list[str], env: Mapping[str, str], cwd: Path, port: int, log: Path
) -> Iterator[Server]:
    with log.open("wb") as out:
        process = spawn(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            _wait_healthy(side, process, port, log)
            yield Server(side=side, host=HOST, port=port, pid=process.pid)
        finally:
            stop(process)


def _base_env(database_url: str) -> dict[str, str]:
    """The caller's environment without agentgql settings: the bench sets its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AGENTGQL_") and key not in _OVERRIDDEN
    }
    env.update(
        DATABASE_URL=database_url,
        AGENTGQL_DB_POOL_MIN=str(POOL_MIN),
        AGENTGQL_DB_POOL_MAX=str(POOL_MAX),
        PYTHONUNBUFFERED="1",
    )
    return env


def agentgql_command() -> str:
    """The ``agentgql`` console script of the interpreter running the bench."""
    script = Path(sys.executable).parent / "agentgql"
    if not script.exists():
        raise ServerFailed(f"no agentgql script next to {sys.executable}; pip install -e .")
    return str(script)


@contextmanager
def agentgql_server(
    database_url: str,
    workdir: Path,
    extra_env: Mapping[str, str] | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[Server]:
    """``agentgql serve``: one uvicorn worker; WARNING root level silences the access log.

    Runs in ``workdir`` with its own data dir and secret key, so it neither reads
    a developer's ``.env`` nor writes ``./data`` into the repository.
    """
    port = free_port()
    env = _base_env(database_url)
    env.update(
        AGENTGQL_LOG_LEVEL="WARNING",
        AGENTGQL_DATA_DIR=str(workdir / "agentgql-data"),
        AGENTGQL_SECRET_KEY=secrets.token_urlsafe(32),
    )
    env.update(extra_env or {})
    argv = [agentgql_command(), "serve", "--host", HOST, "--port", str(port), *serve_args]
    with _running("graphql", argv, env, workdir, port, workdir / "agentgql.log") as server:
        yield server


@contextmanager
def baseline_server(database_url: str, workdir: Path) -> Iterator[Server]:
    """``bench.baseline:app`` under uvicorn: one worker, no access log, level warning."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = _base_env(database_url)
    log = workdir / "baseline.log"
    with _running("baseline", argv, env, REPO_ROOT, port, log) as server:
        yield server


@contextmanager
def stream_baseline_server(workdir: Path) -> Iterator[Server]:
    """``bench.stream_baseline:app`` under uvicorn with agentgql's WebSocket settings
    (uvloop, the sans-I/O websockets protocol, no per-message deflate, 20 s pings)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.stream_baseline:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--ws",
        "websockets-sansio",
        "--ws-per-message-deflate",
        "false",
        "--ws-ping-interval",
        "20",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {key: value for key, value in os.environ.items() if key not in _OVERRIDDEN}
    log = workdir / "stream-baseline.log"
    with _running("stream-baseline", argv, env, REPO_ROOT, port, log) as server:
        yield server
