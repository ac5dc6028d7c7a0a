"""How much the server's memory grows while open subscriptions stream a chat's deltas.

``python -m bench.stream_memory [--subscriptions 1] [--events 10000] [--rounds 3]
[--redis-url URL]``, also ``python -m bench.stream_latency --memory [...]``.

One ``agentgql serve`` (daemon off) on Redis, as ``bench.stream_latency`` starts
it; this process publishes text deltas (PartDelta) through its own
``ChatAnnouncer`` exactly as a daemon replica does, and real WebSocket clients
count the frames of their ``chatEvents`` subscriptions. Deltas go out in
batches that each wait for every subscriber, so no hub queue overflows (a
resync would void the count). After one warm-up round (first-use paths,
caches, allocator arenas) the server's VmRSS is read after every further round
of ``--events``, once every subscriber has all of them. An open subscription
holds nothing per event, so the growth per round should be flat: allocator
noise, tens to a few hundred KiB, not the megabytes of something kept per event.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop

from bench.postgres import bench_database
from bench.servers import Server, agentgql_server
from bench.stream_latency import idle_chat, open_subscription, prepare_viewer
from events.announcer import ChatAnnouncer
from events.hub import EventHub
from resolvers import global_id

STREAMED = """subscription($id: ID!) { chatEvents(chatId: $id) {
  __typename ... on StatusChanged { status }
  ... on PartDelta { partIndex part { __typename ... on TextPart { text } } } } }"""
BATCH = 250  # deltas in flight per wait: well under the hub's per-subscriber queue
WAIT_S = 60.0  # for one batch to reach every subscriber on a loaded machine
SETTLE_S = 0.2  # frames are out; let the server finish the batch's last sends


class StreamFailed(RuntimeError):
    """A subscription errored, closed, resynced or stalled: the figure would be wrong."""


class Counter:
    """The PartDelta frames one subscription received."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.deltas = 0
        self.listening = False
        self.failure: str | None = None
        self._changed = asyncio.Event()

    async def pump(self) -> None:
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind != "next":
                    self._fail(f"{kind} frame: {message}")
                    return
                if message["payload"].get("errors"):
                    self._fail(f"errors: {message['payload']['errors']}")
                    return
                typename = message["payload"]["data"]["chatEvents"]["__typename"]
                if typename == "Resync":
                    self._fail("the server resynced the stream (events were dropped)")
                    return
                if typename == "PartDelta":
                    self.deltas += 1
                elif typename == "QueueUpdated":
                    self.listening = True
                self._changed.set()
            self._fail("the server closed the socket")
        except Exception as exc:  # the bench reports it instead of hanging on a count
            self._fail(repr(exc))

    def _fail(self, why: str) -> None:
        self.failure = why
        self._changed.set()

    async def replayed(self) -> None:
        """The stream's replay ended (QueueUpdated): the server listens from here on."""
        await self._until(lambda: self.listening, "no replay")

    async def reach(self, count: int) -> None:
        await self._until(lambda: self.deltas >= count, f"deltas short of {count}")

    async def _until(self, done: Callable[[], bool], missing: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if self.failure is not None:
                raise StreamFailed(self.failure)
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise StreamFailed(f"{missing} after {WAIT_S:.0f} s ({self.deltas} deltas)")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue


@dataclass(frozen=True)
class MemoryResult:
    events: int  # published per round
    subscriptions: int
    warm_kib: int  # RSS after the warm-up round
    growth_kib: list[int]  # per measured round
    events_per_s: float  # published and received by all, over the measured rounds

    @property
    def median_kib(self) -> float:
        return statistics.median(self.growth_kib)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise StreamFailed(f"no VmRSS for process {pid}")


async def _round(
    events: ChatAnnouncer, chat: uuid.UUID, counters: list[Counter], first: int, n: int
) -> None:
    """Publish deltas ``first+1 .. first+n`` and wait until every subscriber has them."""
    for start in range(first, first + n, BATCH):
        end = min(start + BATCH, first + n)
        for seq in range(start + 1, end + 1):
            await events.part(chat, 0, {"type": "text", "text": f"{seq} "}, seq)
        for counter in counters:
            await counter.reach(end)


async def _measure(
    server: Server, token: str, redis_url: str, subscriptions: int, n: int, rounds: int
) -> MemoryResult:
    base = f"http://{server.host}:{server.port}"
    hub = EventHub(redis_url)
    await hub.connect()
    headers = {"Authorization": f"Bearer {token}"}
    counters: list[Counter] = []
    pumps: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            chat_id = await idle_chat(http)
        chat = global_id.decode_uuid(chat_id, "Chat")
        for _ in range(subscriptions):
            counters.append(Counter(await open_subscription(base, token, chat_id, STREAMED)))
        pumps = [asyncio.create_task(c.pump()) for c in counters]
        for counter in counters:  # deltas published before the hub listens are lost
            await counter.replayed()
        events = ChatAnnouncer(hub)
        await _round(events, chat, counters, 0, n)  # warm-up
        await asyncio.sleep(SETTLE_S)
        samples = [rss_kib(server.pid)]
        started = time.perf_counter()
        for index in range(1, rounds + 1):
            await _round(events, chat, counters, index * n, n)
            await asyncio.sleep(SETTLE_S)
            samples.append(rss_kib(server.pid))
        elapsed = time.perf_counter() - started - rounds * SETTLE_S
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*(c.ws.close() for c in counters), return_exceptions=True)
        await hub.disconnect()
    growth = [after - before for before, after in itertools.pairwise(samples)]
    return MemoryResult(n, subscriptions, samples[0], growth, rounds * n / elapsed)


def _spaced(count: int) -> str:
    """10000 → "10 000", as the figure is quoted."""
    return f"{count:,}".replace(",", " ")


def report(result: MemoryResult, load_before: float) -> str:
    rounds = ", ".join(str(kib) for kib in result.growth_kib)
    return "\n".join(
        [
            f"stream-memory (redis, {result.subscriptions} subscription(s), "
            f"{_spaced(result.events)} deltas per round, {result.events_per_s:.0f} deltas/s)",
            f"  load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}; "
            f"server RSS after warm-up {result.warm_kib / 1024:.1f} MiB",
            f"RSS growth per {_spaced(result.events)} events: {result.median_kib:.0f} KiB "
            f"(rounds: {rounds})",
        ]
    )


def _run(args: argparse.Namespace) -> MemoryResult:
    with tempfile.TemporaryDirectory() as tmp, bench_database() as database:
        token, _ = asyncio.run(prepare_viewer(database.url))
        env = {"BROADCAST_URL": args.redis_url}
        with (
            agentgql_server(database.url, Path(tmp), env, ["--no-daemon"]) as server,
            # The client runs on uvloop like the server, as in bench.stream_latency.
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        ):
            measured = _measure(
                server, token, args.redis_url, args.subscriptions, args.events, args.rounds
            )
            return runner.run(measured)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_memory", description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=1, help="open chatEvents streams")
    parser.add_argument("--events", type=int, default=10_000, help="deltas per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds after warm-up")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    args = parser.parse_args(argv)
    if min(args.subscriptions, args.events, args.rounds) < 1:
        parser.error("--subscriptions, --events and --rounds must be ≥ 1")
    load_before = os.getloadavg()[0]
    try:
        result = _run(args)
    except StreamFailed as exc:
        print(f"stream-memory: {exc}", file=sys.stderr)
        return 1
    print(report(result, load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
