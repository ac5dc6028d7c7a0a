"""A private redis-server on a free port, for tests that kill, freeze or restart
their broadcast backend (never the shared one on 6379)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator

import pytest
from redis import asyncio as redis
from starlette.applications import Starlette

from tests.daemon.live import eventually
from tests.harness import IN_CI


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A private redis-server process that a test may kill and restart."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start it and wait until it answers PING (or fail within 10 s)."""
        self.process = await asyncio.create_subprocess_exec(
            *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--daemonize", "no"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while not await self._answers(client):
                    if not self.running:
                        pytest.fail(f"redis-server exited with {self.process.returncode}")
                    await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)

    def pause(self, paused: bool) -> None:
        """Freeze the process: its sockets stay open but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    @staticmethod
    async def _answers(client: redis.Redis) -> bool:
        try:
            return bool(await client.ping())
        except redis.ConnectionError:
            return False


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[RedisServer]:
    """A started server, killed afterwards; absent redis-server fails under CI."""
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary, free_port())
    await server.start()
    try:
        yield server
    finally:
        if server.running:
            await server.kill()


# Registered for every test module (tests/conftest.py): a module that broadcasts
# over its own Redis asks for ``redis_server``; one that kills it, ``backend_up``.
@pytest.fixture(scope="module")
async def redis_server() -> AsyncIterator[RedisServer]:
    async with private_redis() as server:
        yield server


@pytest.fixture
async def backend_up(app: Starlette, redis_server: RedisServer) -> None:
    """Each test starts with the backend up and the module's hub connected to it."""
    if not redis_server.running:
        await redis_server.start()
    await eventually(app.state.event_hub.ping, timeout=30)
