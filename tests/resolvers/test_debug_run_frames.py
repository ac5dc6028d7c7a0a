"""``debugRuns`` shows each change of a run as of that change, however late it reads.

In-process: the subscription runs through the schema as the server runs it (the
app's memory hub, real PostgreSQL) and the test plays the daemon's recorder.
The stream is read only after the whole run is recorded, the latest a busy
server can read: each announced change is still its own frame, showing the run
and its steps as that change left them, never a state committed after it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette

from daemon.debug_recorder import DebugRecorder
from daemon.providers import Finish, ModelMessage, ModelRequest, TextDelta, Usage
from db.models import Chat, DebugRunKind
from db.parts import TextPart
from events.announcer import ChatAnnouncer
from events.channels import debug_channel
from events.payloads import DebugRunChanged, DebugRunPhase
from resolvers import global_id
from resolvers.context import RequestContext
from schema.build import build_schema
from tests.harness import new_person, scripted_model

DEBUG_RUNS = """
subscription($id: ID!) {
  debugRuns(chatId: $id) {
    id status finishedAt costMicros tokenSummary
    steps { index status }
  }
}"""

MODEL = scripted_model(model="scripted-model", context_limit=100_000, compression_threshold=80_000)
REQUEST = ModelRequest(
    model="scripted-model", system=None, messages=[ModelMessage("user", [TextPart("hi")])]
)

Frame = dict[str, Any]


class Stream:
    """One ``debugRuns`` subscription, read one frame at a time."""

    def __init__(self, results: AsyncGenerator[Any, None]) -> None:
        self.results = results

    async def next(self) -> Frame:
        result = await asyncio.wait_for(anext(self.results), 10)
        assert result.errors is None, result.errors
        frame: Frame = result.data["debugRuns"]
        return frame


@asynccontextmanager
async def watched_chat(app: Starlette) -> AsyncIterator[tuple[Chat, Stream, ChatAnnouncer]]:
    """A logged chat with one finished run, and a live ``debugRuns`` stream of it
    (its first frame, that run, read: the stream is subscribed from here)."""
    person = await new_person("debug")
    chat_id = uuid.uuid4()
    chat = await Chat.create(
        id=chat_id,
        owner_id=person.user.id,
        root_id=chat_id,
        title="Watched",
        updated_at=datetime.now(UTC),
        debug_logging_override=True,
    )
    events: ChatAnnouncer = app.state.announcer
    earlier = await DebugRecorder.start(chat.id, DebugRunKind.TITLE_GENERATION, MODEL, events, None)
    await earlier.finish()
    context = RequestContext(request_id="debug-frames", viewer=person.user, events=events)
    gid = global_id.encode("Chat", chat.id)
    results = await build_schema().subscribe(DEBUG_RUNS, {"id": gid}, context_value=context)
    assert isinstance(results, AsyncGenerator), results
    stream = Stream(results)
    try:
        first = await stream.next()
        assert first["id"] == global_id.encode("DebugRun", earlier.run_id)
        yield chat, stream, events
    finally:
        await results.aclose()


async def record_step(recorder: DebugRecorder, usage: Usage) -> None:
    """One model call, as the recorder's client wrapper sees it."""
    step = recorder.step(REQUEST)
    step.attempt_started()
    for event in (TextDelta("hello"), usage, Finish("stop")):
        step.observe(event)
    step.attempt_ended(None)
    await step.end()


def summary(frame: Frame) -> tuple[str, bool, int | None, str, list[tuple[int, str]]]:
    steps = [(s["index"], s["status"]) for s in frame["steps"]]
    finished = frame["finishedAt"] is not None
    return frame["status"], finished, frame["costMicros"], frame["tokenSummary"], steps


async def test_a_late_reader_still_sends_the_start_the_step_and_the_end(app: Starlette) -> None:
    async with watched_chat(app) as (chat, stream, events):
        recorder = await DebugRecorder.start(chat.id, DebugRunKind.CHAT_TURN, MODEL, events, None)
        await record_step(recorder, Usage(input_tokens=3, output_tokens=5))
        await recorder.finish()
        frames = [await stream.next() for _ in range(3)]

    assert {f["id"] for f in frames} == {global_id.encode("DebugRun", recorder.run_id)}
    start, step, end = (summary(f) for f in frames)
    assert start == ("IN_PROGRESS", False, None, "0→0 tok", [])
    assert step == ("IN_PROGRESS", False, 13, "3→5 tok", [(0, "COMPLETED")])
    assert end == ("COMPLETED", True, 13, "3→5 tok", [(0, "COMPLETED")])


async def test_each_step_is_its_own_frame_with_the_steps_up_to_it(app: Starlette) -> None:
    async with watched_chat(app) as (chat, stream, events):
        recorder = await DebugRecorder.start(chat.id, DebugRunKind.CHAT_TURN, MODEL, events, None)
        await record_step(recorder, Usage(input_tokens=3, output_tokens=5))
        await record_step(recorder, Usage(input_tokens=7, output_tokens=1))
        await recorder.finish(RuntimeError("the tool broke"))
        frames = [summary(await stream.next()) for _ in range(4)]

    assert frames == [
        ("IN_PROGRESS", False, None, "0→0 tok", []),
        ("IN_PROGRESS", False, 13, "3→5 tok", [(0, "COMPLETED")]),
        ("IN_PROGRESS", False, 22, "10→6 tok", [(0, "COMPLETED"), (1, "COMPLETED")]),
        ("ERROR", True, 22, "10→6 tok", [(0, "COMPLETED"), (1, "COMPLETED")]),
    ]


async def test_a_change_sent_without_its_state_shows_the_run_as_read(app: Starlette) -> None:
    """As an older replica announces it, mid-deploy: the run as it is now."""
    async with watched_chat(app) as (chat, stream, events):
        recorder = await DebugRecorder.start(chat.id, DebugRunKind.CHAT_TURN, MODEL, events, None)
        frame = await stream.next()  # its start, as of the start
        await record_step(recorder, Usage(input_tokens=3, output_tokens=5))
        assert summary(await stream.next())[4] == [(0, "COMPLETED")]
        assert recorder.run_id is not None
        bare = DebugRunChanged(chat.id, recorder.run_id, DebugRunPhase.STEP)
        await events.hub.publish(debug_channel(chat.id), bare)
        now = await stream.next()
        await recorder.finish()

    assert summary(frame) == ("IN_PROGRESS", False, None, "0→0 tok", [])
    assert summary(now) == ("IN_PROGRESS", False, 13, "3→5 tok", [(0, "COMPLETED")])
