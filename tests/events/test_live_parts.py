"""The live-part store: what it publishes is what a reader of its snapshot gets.

Both implementations, on a real hub: memory, and Redis (a private redis-server).
A delta larger than a broadcast payload (long text of 4-byte characters) is
published in pieces, so subscribers and the snapshot both hold all of it.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from events.hub import EventHub
from events.live_parts import live_parts, run_tag
from events.payloads import Resync
from events.wire import as_json
from tests.harness import IN_CI
from tests.private_redis import RedisServer, free_port


@pytest.fixture(scope="module")
async def redis_url() -> AsyncIterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary, free_port())
    await server.start()
    try:
        yield server.url
    finally:
        await server.kill()


@pytest.fixture(params=["memory", "redis"])
async def hub(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[EventHub]:
    url = "memory://" if request.param == "memory" else redis_url
    events = EventHub(url)
    await events.connect()
    try:
        yield events
    finally:
        await events.disconnect()


def text_of(deltas: list[dict[str, Any]]) -> str:
    return "".join(d["part"]["text"] for d in deltas if d["kind"] == "part")


async def test_a_delta_over_the_payload_cap_reaches_subscribers_and_the_snapshot_whole(
    hub: EventHub,
) -> None:
    chat_id = uuid.uuid4()
    run = run_tag(uuid.uuid4(), None)
    store = live_parts(hub)
    long = "😀" * 2000 + "end"  # 8000+ bytes of UTF-8 in one delta
    async with hub.subscribe(f"chat:{chat_id}") as subscription:
        await store.begin(chat_id, run)
        await store.append(chat_id, run, [(0, {"type": "text", "text": "start "})])
        await store.append(chat_id, run, [(0, {"type": "text", "text": long})])
        received: list[dict[str, Any]] = []
        while text_of(received) != "start " + long:
            received.append(as_json(await subscription.get(timeout=5)))
    step = await store.snapshot(chat_id)
    assert step is not None
    assert step.parts == [{"type": "text", "text": "start " + long}]
    seqs = [d["seq"] for d in received]
    assert seqs == sorted(seqs)
    assert step.seq == seqs[-1]
    await store.end(chat_id, run, discarded=False)


async def test_five_hundred_readers_at_once_all_get_the_step(redis_url: str) -> None:
    """500 clients subscribing together each read the live step: none may be told
    the backend is down because more reads were in flight than connections."""
    events = EventHub(redis_url)
    await events.connect()
    try:
        chat_id = uuid.uuid4()
        run = run_tag(uuid.uuid4(), None)
        store = live_parts(events)
        await store.begin(chat_id, run)
        await store.append(chat_id, run, [(0, {"type": "text", "text": "hello"})])
        steps = await asyncio.gather(*(store.snapshot(chat_id) for _ in range(500)))
        assert [step.parts if step is not None else None for step in steps] == [
            [{"type": "text", "text": "hello"}]
        ] * 500
    finally:
        await events.disconnect()


async def test_five_hundred_publishes_at_once_all_go_out(redis_url: str) -> None:
    events = EventHub(redis_url)
    await events.connect()
    try:
        channel = f"chat:{uuid.uuid4()}"
        async with events.subscribe(channel) as subscription:
            sent = [Resync(f"r{i}") for i in range(500)]
            await asyncio.gather(*(events.publish(channel, event) for event in sent))
            got = [await asyncio.wait_for(subscription.get(), 5) for _ in sent]
        assert sorted(e.reason for e in got if isinstance(e, Resync)) == sorted(
            e.reason for e in sent
        )
    finally:
        await events.disconnect()
