"""One model step as it streams: accumulated parts, coalesced live deltas.

Deltas are batched for ``coalesce_s`` (~50 ms) and published as append-only
part deltas on the chat's channel, each applied to the live-part store in the
same beat (``events.live_parts``: Redis, so every replica replays the step to
a subscriber that joins mid-step); nothing is written to the database per
token. The accumulated parts become the step's durable assistant message.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from daemon.providers import ReasoningDelta, StreamEvent, TextDelta, ToolCall
from db.text_rules import storable, storable_text
from events.announcer import ChatAnnouncer
from events.live_parts import live_parts

log = logging.getLogger(__name__)

# Keep each published delta well under the 8000-byte payload cap.
MAX_DELTA_CHARS = 2000


class StepStream:
    def __init__(
        self, chat_id: uuid.UUID, events: ChatAnnouncer | None, coalesce_s: float, run: str = ""
    ) -> None:
        self.chat_id = chat_id
        self.events = events
        self.coalesce_s = coalesce_s
        self.run = run  # ``live_part_store.run_tag`` of the turn
        self.parts: list[dict[str, Any]] = []
        self.tool_calls: list[ToolCall] = []
        self._unsent: dict[int, dict[str, Any]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._store = live_parts(events.hub if events is not None else None)
        self._begun = False  # the store's step starts (over) with the first flush
        self._broken = False  # a write failed: clients may lack a delta

    def _text(self, kind: str, text: str) -> None:
        text = storable_text(text)  # deltas as the message will store it (no NUL)
        if not self.parts or self.parts[-1]["type"] != kind:
            self.parts.append({"type": kind, "text": ""})
        index = len(self.parts) - 1
        self.parts[index]["text"] += text
        pending = self._unsent.setdefault(index, {"type": kind, "text": ""})
        pending["text"] += text

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text("text", event.text)
        elif isinstance(event, ReasoningDelta):
            self._text("reasoning", event.text)
        elif isinstance(event, ToolCall):
            self.tool_calls.append(event)
            part = storable(
                {
                    "type": "tool-call",
                    "toolCallId": event.tool_call_id,
                    "toolName": event.tool_name,
                    "args": event.args,
                }
            )
            self.parts.append(part)
            self._unsent[len(self.parts) - 1] = part
        else:
            return
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.coalesce_s)
        await self.flush()

    async def flush(self) -> None:
        unsent, self._unsent = self._unsent, {}
        if self._broken:  # start over: clients drop the step and get it whole
            unsent = dict(enumerate(self.parts))
        deltas = [(i, piece) for i in sorted(unsent) for piece in _split(unsent[i])]
        if not deltas:
            return
        try:
            if not self._begun or self._broken:
                await self._store.begin(self.chat_id, self.run, reset=self._broken)
                self._begun, self._broken = True, False
            # Stored and published in one beat: a reader that subscribed, then
            # read the store, has each delta exactly once.
            await self._store.append(self.chat_id, self.run, deltas)
        except Exception:
            # Not retried (it may have been applied); the next flush resends the step.
            self._broken = True
            log.warning("publishing part deltas failed", exc_info=True)

    async def reset(self) -> None:
        """A retry starts the step over: clients drop its partial output, now (a
        subscriber joining before the retry streams again must not replay it)."""
        self.parts, self.tool_calls, self._unsent = [], [], {}
        if not self._begun or self._broken:
            return  # nothing reached clients, or the next flush starts over anyway
        try:
            await self._store.begin(self.chat_id, self.run, reset=True)
        except Exception:
            self._broken = True
            log.warning("resetting the live step failed", exc_info=True)

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self.flush()

    async def end(self, *, discarded: bool = False) -> None:
        """The message has the step now; ``discarded``: no message will (the run
        was handed back), so clients are told to drop the partial output."""
        try:
            await self._store.end(self.chat_id, self.run, discarded=discarded)
        except Exception:
            log.warning("ending the live step failed", exc_info=True)


def _split(delta: dict[str, Any]) -> list[dict[str, Any]]:
    text = delta.get("text")
    if not isinstance(text, str) or len(text) <= MAX_DELTA_CHARS:
        return [delta]
    return [
        {**delta, "text": text[i : i + MAX_DELTA_CHARS]}
        for i in range(0, len(text), MAX_DELTA_CHARS)
    ]
