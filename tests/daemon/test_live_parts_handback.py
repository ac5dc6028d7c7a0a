"""A run handed back on shutdown tells clients to drop the parts it streamed.

Stopping a daemon mid-step hands its chat back to PENDING without keeping the
step's output: the next worker streams the step again from its start. Without a
``parts_reset`` between the two runs, a client appending deltas would show the
handed-back run's text followed by the whole step.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.applications import Starlette

from db.models import User
from db.vocabulary import MessageRole
from events import live_steps
from events.hub import EventHub
from events.wire import as_json
from tests.daemon import test_chat_daemon_workers as workers
from tests.daemon.live import chat_settled, eventually, messages_of, stored_text
from tests.daemon.test_chat_daemon_workers import daemons, pending_chats, settings, stop

# The workers module's fixtures: its database and hub, no daemon of the app's own.
app = workers.app
owner = workers.owner


def client_text(events: list[dict[str, Any]]) -> str:
    """The step as a client builds it from the channel: deltas, dropped at a reset."""
    parts: dict[int, str] = {}
    for event in events:
        if event.get("kind") == "parts_reset":
            parts.clear()
        elif event.get("kind") == "part":
            index = event["partIndex"]
            parts[index] = parts.get(index, "") + event["part"]["text"]
    return "".join(parts[i] for i in sorted(parts))


async def test_a_handed_back_step_is_reset_before_the_next_worker_streams_it(
    app: Starlette, owner: User
) -> None:
    reply = " ".join(f"w{i}-{uuid.uuid4().hex[:4]}" for i in range(20))
    hub: EventHub = app.state.event_hub
    events: list[dict[str, Any]] = []
    [chat_id] = await pending_chats(owner, [f"/slow 60\n/reply {reply}"])
    async with hub.subscribe(f"chat:{chat_id}") as subscription:

        async def collect() -> None:
            async for event in subscription:
                events.append(as_json(event))

        collector = asyncio.create_task(collect())
        try:
            async with daemons(app, settings()) as (leaving,):
                leaving.wake()

                async def streaming() -> bool:
                    step = live_steps.current(chat_id)
                    return step is not None and len(step.parts) > 0

                await eventually(streaming)
                await eventually(lambda: _async(len(client_text(events).split()) >= 3))
                await stop(leaving)
            streamed = client_text(events)
            assert reply.startswith(streamed)  # the handed-back run's text so far
            async with daemons(app, settings()) as (_,):
                await chat_settled(chat_id)
                await eventually(lambda: _async(any(e.get("kind") == "message" for e in events)))
        finally:
            collector.cancel()
    [message] = await messages_of(chat_id, MessageRole.ASSISTANT)
    assert stored_text(message.parts) == reply
    assert [e["kind"] for e in events].count("parts_reset") == 1
    assert client_text(events) == reply


async def _async(value: bool) -> bool:
    return value
