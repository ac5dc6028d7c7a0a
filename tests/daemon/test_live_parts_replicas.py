"""The running step's parts on every replica, and a reset when another run takes over.

The recommended deployment, as real processes: two ``agentgql serve --no-daemon``
APIs and one ``agentgql daemon``, on one database and a private redis-server.
A subscriber that joins the second API mid-step gets the step so far, then the
rest, then the message: the text it can build is the daemon's, character for
character. When the daemon is killed mid-step and another takes the chat over,
clients get ``PartsReset`` before the new run streams the step again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.vocabulary import MessageRole
from tests.daemon.live import (
    CHAT_EVENTS,
    GraphQLSocket,
    Subscription,
    chat_settled,
    chat_uuid,
    create_chat,
    http_client,
    is_message,
    messages_of,
    nonce,
    stored_text,
    typename,
)
from tests.private_redis import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
START_S = 60.0
# CHAT_EVENTS plus the reset (kept here so the shared document stays as it is).
EVENTS = CHAT_EVENTS.replace(
    "... on HistoryReset { chatId }",
    "... on HistoryReset { chatId }\n    ... on PartsReset { chatId reason }",
)
WORDS = 40


class Process:
    """One ``agentgql`` command with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("wb") as sink:
            self.proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "server.cli", *self.args),
                cwd=ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def wait_for_line(self, text: str) -> None:
        async with asyncio.timeout(START_S):
            while text not in self.log.read_text():
                assert self.alive(), self.log.read_text()
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: nothing is handed back, the chat is left RUNNING."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Api(Process):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), "--no-daemon"], env, log)

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client, asyncio.timeout(START_S):
            while True:
                assert self.alive(), self.log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)


class Deployment:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.apis = [Api(env, logs / "api1.log"), Api(env, logs / "api2.log")]
        self.daemons: list[Process] = []

    async def daemon(self, **settings: str) -> Process:
        name = f"daemon{len(self.daemons) + 1}"
        process = Process(["daemon"], {**self.env, **settings}, self.logs / f"{name}.log")
        self.daemons.append(process)
        await process.start()
        await process.wait_for_line("agentgql: daemon")
        return process


@pytest.fixture(scope="module")
async def deployment(
    app: Starlette,
    database_url: str,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    """Both APIs and the first daemon; the module's app made the default model."""
    logs = tmp_path_factory.mktemp("logs")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AGENTGQL_BROADCAST_URL": redis_server.url,
        "AGENTGQL_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "AGENTGQL_LOG_FORMAT": "text",
        "AGENTGQL_STREAM_COALESCE_MS": "20",
        "AGENTGQL_DAEMON_POLL_S": "0.2",
    }
    deployed = Deployment(env, logs)
    try:
        for api in deployed.apis:
            await api.start()
        await deployed.daemon()
        await asyncio.gather(*(api.ready() for api in deployed.apis))
        yield deployed
    finally:
        await asyncio.gather(*(p.stop() for p in [*deployed.apis, *deployed.daemons]))


def reply_text() -> str:
    return " ".join(f"w{i}-{nonce()}" for i in range(WORDS))


def built_text(events: list[dict[str, Any]]) -> str:
    """What a client shows: deltas appended per part, dropped at each PartsReset
    (and Resync: the stream starts over with the step so far)."""
    parts: dict[int, str] = {}
    for event in events:
        if typename(event, "PartsReset") or typename(event, "Resync"):
            parts.clear()
        elif typename(event, "PartDelta"):
            index = event["partIndex"]
            parts[index] = parts.get(index, "") + event["part"]["text"]
    return "".join(parts[i] for i in sorted(parts))


def live_text(events: list[dict[str, Any]]) -> str:
    """The assistant's text received so far (for waiting on progress)."""
    return built_text(events)


async def until_text(sub: Subscription, words: int) -> list[dict[str, Any]]:
    """Events until the step's text has ``words`` words."""
    return await sub.until(lambda _: len(live_text(sub.received).split()) >= words, timeout=30)


def step_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events up to and including the assistant's message; none may follow."""
    ends = [i for i, e in enumerate(events) if is_message(e, "ASSISTANT")]
    assert len(ends) == 1, events
    assert not any(typename(e, "PartDelta") for e in events[ends[0] :]), events
    return events[: ends[0] + 1]


async def test_a_subscriber_joining_another_api_mid_step_gets_the_step_so_far(
    deployment: Deployment, admin_token: str
) -> None:
    first, second = deployment.apis
    reply = reply_text()
    async with (
        http_client(first.url) as gql,
        GraphQLSocket.open(first.url, admin_token) as early,
        GraphQLSocket.open(second.url, admin_token) as late,
    ):
        chat = await create_chat(gql, admin_token, f"/slow 50\n/reply {reply}")
        watching = await early.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
        before_join = await until_text(watching, 10)
        joining = await late.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
        joined = await joining.until(lambda e: typename(e, "QueueUpdated"))
        # The replay already holds what the first API's client had when it joined.
        assert live_text(joined).startswith(live_text(before_join))
        assert len(live_text(joined).split()) >= 10
        await joining.until(lambda e: is_message(e, "ASSISTANT"), timeout=30)
        await watching.until(lambda e: is_message(e, "ASSISTANT"), timeout=30)
    await chat_settled(chat_uuid(chat["id"]), timeout=30)
    [message] = await messages_of(chat_uuid(chat["id"]), MessageRole.ASSISTANT)
    produced = stored_text(message.parts)
    assert produced == reply
    assert built_text(step_events(joining.received)) == produced
    assert built_text(step_events(watching.received)) == produced


async def test_a_takeover_resets_the_dead_runs_parts_on_every_api(
    deployment: Deployment, admin_token: str
) -> None:
    first, second = deployment.apis
    [doomed] = [d for d in deployment.daemons if d.alive()]
    reply = reply_text()
    async with (
        http_client(first.url) as gql,
        GraphQLSocket.open(first.url, admin_token) as one,
        GraphQLSocket.open(second.url, admin_token) as two,
    ):
        chat = await create_chat(gql, admin_token, f"/slow 50\n/reply {reply}")
        watchers = [
            await socket.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
            for socket in (one, two)
        ]
        for watcher in watchers:
            await until_text(watcher, 8)
        await doomed.kill()
        # Joins after the death, before the takeover: it replays the dead run's step.
        orphan = await two.subscribe(EVENTS, {"id": chat["id"]}, field="chatEvents")
        replayed = await orphan.until(lambda e: typename(e, "QueueUpdated"))
        assert len(live_text(replayed).split()) >= 8
        await deployment.daemon(
            AGENTGQL_DAEMON_STALE_AFTER_S="1", AGENTGQL_DAEMON_HEARTBEAT_S="0.2"
        )
        for watcher in [*watchers, orphan]:
            await watcher.until(lambda e: is_message(e, "ASSISTANT"), timeout=40)
    await chat_settled(chat_uuid(chat["id"]), timeout=30)
    messages = await messages_of(chat_uuid(chat["id"]))
    assert [m.role for m in messages] == [MessageRole.USER, MessageRole.ASSISTANT]
    produced = stored_text(messages[1].parts)
    assert produced == reply
    for watcher in [*watchers, orphan]:
        events = step_events(watcher.received)
        resets = [i for i, e in enumerate(events) if typename(e, "PartsReset")]
        assert len(resets) == 1, events
        # The dead run's text came first, then the reset, then the new run's step.
        assert built_text(events[: resets[0]]).split()[:8] == reply.split()[:8]
        assert built_text(events) == produced
