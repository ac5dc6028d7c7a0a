"""The model step a worker is streaming right now, per chat, in this process.

The daemon appends deltas here as it publishes them; a ``chatEvents`` subscriber
that opens mid-step replays these parts before the live deltas, so nothing
streamed so far is missing. Nothing of it is written to the database: the step
becomes a durable message when it ends. This is the in-process store behind
``events.live_parts`` for the memory and Postgres broadcast backends; with
Redis the store lives in Redis, where every replica reads it.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

# Process-wide order of published deltas: a stream that replays a live step
# skips the live deltas it already replayed (seq at or below the snapshot's).
_sequence = itertools.count(1)


def next_seq() -> int:
    return next(_sequence)


@dataclass
class LiveStep:
    role: str = "assistant"
    parts: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0  # the last delta applied
    run: str = ""  # the run streaming it (see ``events.live_parts.run_tag``)

    def append(self, index: int, delta: dict[str, Any], seq: int = 0) -> None:
        """Apply an append-only delta: text is concatenated, anything else replaces."""
        self.seq = max(self.seq, seq)
        while len(self.parts) <= index:
            self.parts.append({})
        current = self.parts[index]
        if current and delta.get("type") == current.get("type") and "text" in delta:
            current["text"] = current.get("text", "") + delta["text"]
        else:
            self.parts[index] = dict(delta)


_steps: dict[uuid.UUID, LiveStep] = {}


def begin(chat_id: uuid.UUID, run: str = "") -> LiveStep:
    step = _steps[chat_id] = LiveStep(run=run)
    return step


def current(chat_id: uuid.UUID) -> LiveStep | None:
    return _steps.get(chat_id)


def end(chat_id: uuid.UUID) -> None:
    _steps.pop(chat_id, None)
