"""Tokens carried in URLs never reach the log.

Downloads (``<img src>``) and WebSockets from webviews may carry the session
token as ``?session_token=``; the access log writes every request's path with
its query string. ``agentgql serve`` is run as an operator runs it, its log
captured, and searched for the token after a download and a WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.harness import PASSWORD, SIGN_UP
from tests.uploads import png

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log


@pytest.fixture(params=["json", "text"])
async def served(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Served]:
    """``agentgql serve`` on a free port, its stderr going to a file."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AGENTGQL_DATA_DIR": str(tmp_path / "data"),
        "AGENTGQL_LOG_FORMAT": request.param,
        "AGENTGQL_ALLOW_SIGNUP": "true",
    }
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--no-daemon"),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    assert proc.returncode is None, log.read_text()
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
        yield Served(url, log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), timeout=20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_tokens_in_query_strings_are_redacted(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        signed = await client.post(
            "/graphql",
            json={
                "query": SIGN_UP,
                "variables": {"u": f"log{uuid.uuid4().hex[:8]}", "p": PASSWORD},
            },
        )
        token = signed.json()["data"]["signUp"]["token"]
        stored = await client.post(
            "/files",
            content=png(7),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
        )
        assert stored.status_code == 201, stored.text
        location = stored.headers["location"]
        for query in (
            f"session_token={token}",
            f"size=1&session%5Ftoken={token}",  # a percent-encoded name authenticates too
            f"Session_Token={token}&api_key={token}-k&access_token={token}-a",
        ):
            downloaded = await client.get(f"{location}?{query}")
            if "Session_Token" not in query:
                assert downloaded.status_code == 200, downloaded.text

    ws_url = served.url.replace("http://", "ws://") + f"/graphql?session_token={token}"
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert ack["type"] == "connection_ack"

    text = served.log.read_text()
    assert location.split("?")[0] in text, "the access log is on"
    assert "WebSocket /graphql" in text
    assert token not in text
    assert "session_token=[REDACTED]" in text
    assert "api_key=[REDACTED]" in text
