"""One model step as it streams: accumulated parts, coalesced live deltas.

Deltas are batched for ``coalesce_s`` (~50 ms) and published as append-only
part deltas on the chat's channel; nothing is written to the database per token.
The accumulated parts become the step's durable assistant message.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from daemon.providers import ReasoningDelta, StreamEvent, TextDelta, ToolCall
from db import live_steps
from db.chat_events import ChatEvents

log = logging.getLogger(__name__)

# Keep each published delta well under the 8000-byte payload cap.
MAX_DELTA_CHARS = 2000


class StepStream:
    def __init__(self, chat_id: uuid.UUID, events: ChatEvents | None, coalesce_s: float) -> None:
        self.chat_id = chat_id
        self.events = events
        self.coalesce_s = coalesce_s
        self.parts: list[dict[str, Any]] = []
        self.tool_calls: list[ToolCall] = []
        self._unsent: dict[int, dict[str, Any]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._live = live_steps.begin(chat_id)

    def _text(self, kind: str, text: str) -> None:
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
            part = {
                "type": "tool-call",
                "toolCallId": event.tool_call_id,
                "toolName": event.tool_name,
                "args": event.args,
            }
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
        for index in sorted(unsent):
            delta = unsent[index]
            for piece in _split(delta):
                seq = live_steps.next_seq()
                self._live.append(index, piece, seq)
                if self.events is not None:
                    try:
                        await self.events.part(self.chat_id, index, piece, seq)
                    except Exception:
                        log.warning("publishing a part delta failed", exc_info=True)

    def reset(self) -> None:
        """A retry starts the step over: clients drop its partial output."""
        self.parts, self.tool_calls, self._unsent = [], [], {}
        self._live = live_steps.begin(self.chat_id)

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self.flush()

    def end(self) -> None:
        live_steps.end(self.chat_id)


def _split(delta: dict[str, Any]) -> list[dict[str, Any]]:
    text = delta.get("text")
    if not isinstance(text, str) or len(text) <= MAX_DELTA_CHARS:
        return [delta]
    return [
        {**delta, "text": text[i : i + MAX_DELTA_CHARS]}
        for i in range(0, len(text), MAX_DELTA_CHARS)
    ]
