"""P4: how long a published chat event takes to reach 500 live subscribers.

``python -m bench.stream_latency [--subscribers 500] [--broadcast memory|redis]
[--source mutation|daemon]``; ``--memory`` runs ``bench.stream_memory`` instead
(the server's RSS growth over an open subscription, not latency).

One ``agentgql serve`` (daemon off, so only our events flow), N real WebSocket
clients on graphql-transport-ws, all subscribed to one chat's ``chatEvents``.
For every subscriber the time from the event's source to the StatusChanged
frame is one sample. Two sources:

- ``mutation`` (default): each round sends a message to the idle chat (PENDING)
  and interrupts it (WAITING); the clock starts with the mutation request, so it
  is an upper bound of publish → frame that includes the mutation's own work.
- ``daemon`` (Redis only): this process publishes RUNNING and WAITING through
  its own ``ChatAnnouncer`` on the shared Redis, exactly as a daemon replica does;
  the clock starts at the publish — P4's "daemon publish → client frame".

In the same run and with the same client, the baseline (``bench.stream_baseline``,
a bare Starlette WebSocket route writing one pre-encoded frame to as many
sockets, triggered over HTTP) gets the same rounds, alternating with agentgql's;
both are printed with the ratios. Each side's server CPU per event is its
process's CPU time (``/proc/<pid>/stat``, 10 ms ticks) over its own rounds,
divided by the events: from a mutation it includes the mutation's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
import websockets

from bench.postgres import bench_database
from bench.servers import Server, agentgql_server, stream_baseline_server
from db.connection import close_database, open_database, tortoise_config
from db.migrator import apply_migrations
from db.model_resolution import ensure_default_scripted_model
from db.vocabulary import TokenKind
from events.announcer import ChatAnnouncer
from events.hub import EventHub
from resolvers import global_id
from resolvers.accounts import create_user
from resolvers.tokens import issue_token

SUBSCRIBE = """subscription($id: ID!) { chatEvents(chatId: $id) {
  __typename ... on StatusChanged { status } } }"""
SEND = """mutation($id: ID!) { sendMessage(input: {chatId: $id, content: [{text: "ping"}]}) {
  queued } }"""
INTERRUPT = "mutation($id: ID!) { interruptChat(id: $id) { status } }"
CREATE = 'mutation { createChat(input: {content: [{text: "latency"}]}) { chat { id } } }'


async def prepare_viewer(url: str) -> tuple[str, uuid.UUID]:
    """Migrate the bench database; one user's API token and id."""
    await open_database(url)
    try:
        await apply_migrations(tortoise_config(url))
        await ensure_default_scripted_model()
        user = await create_user("latency", "latency-password-1")
        return (await issue_token(user, TokenKind.API, "latency", None)).secret, user.id
    finally:
        await close_database()


class Source:
    """What starts the clock: a mutation over HTTP, or a daemon-style publish."""

    def __init__(self, http: httpx.AsyncClient, events: ChatAnnouncer | None, owner: uuid.UUID):
        self.http = http
        self.events = events
        self.owner = owner

    def steps(self) -> tuple[tuple[str, str], ...]:
        if self.events is None:
            return ((SEND, "PENDING"), (INTERRUPT, "WAITING"))
        return (("running", "RUNNING"), ("waiting", "WAITING"))

    async def fire(self, step: str, chat_id: str) -> None:
        if self.events is None:
            body = {"query": step, "variables": {"id": chat_id}}
            answer = (await self.http.post("/graphql", json=body)).json()
            assert "errors" not in answer, answer
        else:
            chat = global_id.decode_uuid(chat_id, "Chat")
            await self.events.status(self.owner, chat, step, str(uuid.uuid4()))


class Subscriber:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.arrivals: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def pump(self) -> None:
        async for raw in self.ws:
            message = orjson.loads(raw)
            if message.get("type") == "next":
                event = message["payload"]["data"]["chatEvents"]
                if event.get("__typename") == "StatusChanged":
                    await self.arrivals.put((event["status"], time.perf_counter()))


async def idle_chat(http: httpx.AsyncClient) -> str:
    """A new chat, interrupted to WAITING (no daemon runs it): only our events flow."""
    created = (await http.post("/graphql", json={"query": CREATE})).json()
    chat_id: str = created["data"]["createChat"]["chat"]["id"]
    await http.post("/graphql", json={"query": INTERRUPT, "variables": {"id": chat_id}})
    return chat_id


async def open_subscription(base: str, token: str, chat_id: str, query: str = SUBSCRIBE) -> Any:
    """A graphql-transport-ws socket, acknowledged and subscribed to ``query``."""
    url = base.replace("http://", "ws://") + "/graphql"
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(
        orjson.dumps({"type": "connection_init", "payload": {"authToken": token}}).decode()
    )
    assert orjson.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": query, "variables": {"id": chat_id}}
    await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())
    return ws


async def _open(base: str, token: str, chat_id: str) -> Subscriber:
    return Subscriber(await open_subscription(base, token, chat_id))


class BaselineSource:
    """The bare route's trigger: one HTTP request that writes the frame to every socket."""

    def __init__(self, http: httpx.AsyncClient, steps: tuple[tuple[str, str], ...]) -> None:
        self.http = http
        self._steps = tuple((wanted, wanted) for _, wanted in steps)

    def steps(self) -> tuple[tuple[str, str], ...]:
        return self._steps

    async def fire(self, step: str, chat_id: str) -> None:
        answer = await self.http.post("/fire", json={"status": step})
        assert answer.status_code == 200, answer.text


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    """One server under test: its subscribers, how events start, and what they cost."""

    def __init__(self, name: str, pid: int, source: Source | BaselineSource, chat_id: str):
        self.name = name
        self.pid = pid
        self.source = source
        self.chat_id = chat_id
        self.subs: list[Subscriber] = []
        self.pumps: list[asyncio.Task[None]] = []
        self.samples: list[float] = []
        self.cpu_s = 0.0
        self.events = 0

    async def open(self, base: str, token: str, count: int) -> None:
        for start in range(0, count, 50):  # open in batches: handshakes are CPU
            batch = [_open(base, token, self.chat_id) for _ in range(min(50, count - start))]
            self.subs += await asyncio.gather(*batch)
        self.pumps = [asyncio.create_task(s.pump()) for s in self.subs]
        for sub in self.subs:  # the replayed WAITING status of the snapshot
            await asyncio.wait_for(sub.arrivals.get(), 30)

    async def round(self) -> None:
        for step, wanted in self.source.steps():
            cpu_before = cpu_seconds(self.pid)
            started = time.perf_counter()
            await self.source.fire(step, self.chat_id)
            for sub in self.subs:
                status, at = await asyncio.wait_for(sub.arrivals.get(), 30)
                while status != wanted:
                    status, at = await asyncio.wait_for(sub.arrivals.get(), 30)
                self.samples.append((at - started) * 1000)
            self.cpu_s += cpu_seconds(self.pid) - cpu_before
            self.events += 1

    async def close(self) -> None:
        for task in self.pumps:
            task.cancel()
        await asyncio.gather(*(s.ws.close() for s in self.subs), return_exceptions=True)


async def _measure(
    servers: tuple[Server, Server],
    token: str,
    subscribers: int,
    rounds: int,
    owner: uuid.UUID,
    publish_to: str | None,
) -> tuple[Side, Side]:
    ours, bare = servers
    base, bare_base = _base(ours), _base(bare)
    headers = {"Authorization": f"Bearer {token}"}
    hub = EventHub(publish_to) if publish_to else None
    if hub is not None:
        await hub.connect()
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http,
        httpx.AsyncClient(base_url=bare_base, timeout=60) as bare_http,
    ):
        source = Source(http, ChatAnnouncer(hub) if hub is not None else None, owner)
        agentgql = Side("agentgql", ours.pid, source, await idle_chat(http))
        baseline = Side("baseline", bare.pid, BaselineSource(bare_http, source.steps()), "bare")
        try:
            await agentgql.open(base, token, subscribers)
            await baseline.open(bare_base, token, subscribers)
            for _ in range(rounds):  # alternating, so both see the same machine
                await agentgql.round()
                await baseline.round()
        finally:
            await agentgql.close()
            await baseline.close()
            if hub is not None:
                await hub.disconnect()
    return agentgql, baseline


def _base(server: Server) -> str:
    return f"http://{server.host}:{server.port}"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ratio(ours: Side, baseline: Side, q: float) -> float:
    return _percentile(ours.samples, q) / _percentile(baseline.samples, q)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if "--memory" in raw:  # a different figure with its own options
        from bench import stream_memory

        return stream_memory.main([arg for arg in raw if arg != "--memory"])
    parser = argparse.ArgumentParser(prog="python -m bench.stream_latency")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="measure RSS growth per 10 000 events instead (see python -m bench.stream_memory -h)",
    )
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--broadcast", choices=["memory", "redis"], default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--source", choices=["mutation", "daemon"], default="mutation")
    args = parser.parse_args(raw)
    if args.source == "daemon" and args.broadcast != "redis":
        parser.error("--source daemon publishes from this process: it needs --broadcast redis")
    broadcast = "memory://" if args.broadcast == "memory" else args.redis_url
    publish_to = broadcast if args.source == "daemon" else None
    with tempfile.TemporaryDirectory() as tmp, bench_database() as database:
        token, owner = asyncio.run(prepare_viewer(database.url))
        env = {"BROADCAST_URL": broadcast}
        # The client runs on uvloop like the server: 500 sockets' frames are
        # read in one process, and the default loop's cost would be measured too.
        with (
            agentgql_server(database.url, Path(tmp), env, ["--no-daemon"]) as server,
            stream_baseline_server(Path(tmp)) as bare,
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            measured = _measure(
                (server, bare), token, args.subscribers, args.rounds, owner, publish_to
            )
            ours, baseline = runner.run(measured)
    for side in (ours, baseline):
        samples = side.samples
        print(
            f"stream-latency {side.name} ({args.broadcast}, from {args.source}, "
            f"{args.subscribers} subscribers, {len(samples)} frames): "
            f"p50 {statistics.median(samples):.1f} ms, p99 {_percentile(samples, 0.99):.1f} ms, "
            f"max {max(samples):.1f} ms, server CPU {side.cpu_s / side.events * 1000:.1f} ms/event"
        )
    print(
        f"ratio agentgql/baseline: p50 {_ratio(ours, baseline, 0.5):.2f}, "
        f"p99 {_ratio(ours, baseline, 0.99):.2f}, "
        f"CPU/event {(ours.cpu_s / ours.events) / max(baseline.cpu_s / baseline.events, 1e-9):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
