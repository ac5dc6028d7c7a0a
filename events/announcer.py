"""What changes publish, and on which channel.

A chat's channel carries what its live view needs (status, durable messages,
queue, history resets; the daemon adds part deltas, retries, failures); an
owner's channel carries what their chat list needs. Payloads are ids and small
fields: receivers read rows from the database.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from events.hub import EventHub

log = logging.getLogger(__name__)


def chat_channel(chat_id: uuid.UUID | str) -> str:
    return f"chat:{chat_id}"


def owner_channel(owner_id: uuid.UUID | str) -> str:
    return f"owner:{owner_id}"


def git_channel(workspace_id: uuid.UUID | str) -> str:
    """A workspace's git snapshots (the watcher's changes, by repository root)."""
    return f"git:{workspace_id}"


# Daemons listen here: a chat became PENDING, look for work now (not at the poll).
WORK_CHANNEL = "work"


class ChatAnnouncer:
    """Typed publishing helpers; one instance per process, around its hub."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def _chat(self, chat_id: uuid.UUID, kind: str, **fields: Any) -> None:
        await self.hub.publish(
            chat_channel(chat_id), {"kind": kind, "chatId": str(chat_id), **fields}
        )

    async def _owner(self, owner_id: uuid.UUID, kind: str, chat_id: uuid.UUID) -> None:
        await self.hub.publish(owner_channel(owner_id), {"kind": kind, "chatId": str(chat_id)})

    async def status(
        self, owner_id: uuid.UUID, chat_id: uuid.UUID, status: str, worker_id: str | None = None
    ) -> None:
        extra = {"workerId": worker_id} if worker_id else {}
        await self._chat(chat_id, "status", status=status, **extra)
        await self._owner(owner_id, "status_changed", chat_id)
        if status == "pending":
            await self.hub.publish(WORK_CHANNEL, {"kind": "wake", "chatId": str(chat_id)})

    async def part(self, chat_id: uuid.UUID, index: int, part: dict[str, Any], seq: int) -> None:
        """An append-only delta of the running step (text is appended by clients);
        ``seq`` lets a stream that replayed the live step skip what it has."""
        await self._chat(chat_id, "part", role="assistant", partIndex=index, part=part, seq=seq)

    async def retry(
        self, chat_id: uuid.UUID, attempt: int, delay_ms: int, retrying_at: str, error: Any
    ) -> None:
        await self._chat(
            chat_id, "retry", attempt=attempt, delayMs=delay_ms, retryingAt=retrying_at, error=error
        )

    async def failed(self, chat_id: uuid.UUID, error: Any) -> None:
        await self._chat(chat_id, "error", error=error)

    async def message(self, chat_id: uuid.UUID, message_id: int) -> None:
        await self._chat(chat_id, "message", messageId=message_id)

    async def queue(self, chat_id: uuid.UUID) -> None:
        await self._chat(chat_id, "queue")

    async def history_reset(self, chat_id: uuid.UUID) -> None:
        await self._chat(chat_id, "history_reset")

    async def list_change(self, owner_id: uuid.UUID, chat_id: uuid.UUID, kind: str) -> None:
        """``created``, ``title_changed``, ``archived``, ``unarchived``, ``deleted``…"""
        await self._owner(owner_id, kind, chat_id)

    async def git_changed(
        self, workspace_id: uuid.UUID, changed: list[str], removed: list[str], scanned_at: str
    ) -> None:
        """Repositories whose snapshot changed (read them from workspace_git_snapshots)
        and repositories that disappeared, by root."""
        await self.hub.publish(
            git_channel(workspace_id),
            {
                "kind": "git",
                "workspaceId": str(workspace_id),
                "changed": changed,
                "removed": removed,
                "scannedAt": scanned_at,
            },
        )

    async def request_git_refresh(self, workspace_id: uuid.UUID) -> None:
        """Ask the daemon watching the workspace to rescan now."""
        await self.hub.publish(
            WORK_CHANNEL, {"kind": "git_refresh", "workspaceId": str(workspace_id)}
        )
