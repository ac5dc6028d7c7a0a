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
"""

from __future__ import annotations

import argparse
import asyncio
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
from bench.servers import agentgql_server
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


async def _measure(
    base: str, token: str, subscribers: int, rounds: int, owner: uuid.UUID, publish_to: str | None
) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    hub = EventHub(publish_to) if publish_to else None
    if hub is not None:
        await hub.connect()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        source = Source(http, ChatAnnouncer(hub) if hub is not None else None, owner)
        chat_id = await idle_chat(http)
        subs = []
        for start in range(0, subscribers, 50):  # open in batches: handshakes are CPU
            batch = [_open(base, token, chat_id) for _ in range(min(50, subscribers - start))]
            subs += await asyncio.gather(*batch)
        pumps = [asyncio.create_task(s.pump()) for s in subs]
        for sub in subs:  # the replayed WAITING status of the snapshot
            await asyncio.wait_for(sub.arrivals.get(), 30)
        samples: list[float] = []
        try:
            for _ in range(rounds):
                for step, wanted in source.steps():
                    started = time.perf_counter()
                    await source.fire(step, chat_id)
                    for sub in subs:
                        status, at = await asyncio.wait_for(sub.arrivals.get(), 30)
                        while status != wanted:
                            status, at = await asyncio.wait_for(sub.arrivals.get(), 30)
                        samples.append((at - started) * 1000)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*(s.ws.close() for s in subs), return_exceptions=True)
            if hub is not None:
                await hub.disconnect()
    return samples


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
        with agentgql_server(database.url, Path(tmp), env, ["--no-daemon"]) as server:
            base = f"http://{server.host}:{server.port}"
            # The client runs on uvloop like the server: 500 sockets' frames are
            # read in one process, and the default loop's cost would be measured too.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                samples = runner.run(
                    _measure(base, token, args.subscribers, args.rounds, owner, publish_to)
                )
    print(
        f"stream-latency ({args.broadcast}, from {args.source}, {args.subscribers} subscribers, "
        f"{len(samples)} frames): p50 {statistics.median(samples):.1f} ms, "
        f"p99 {_percentile(samples, 0.99):.1f} ms, max {max(samples):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
