"""What changes publish, and on which channel: one typed method per change.

One ``ChatAnnouncer`` per process, around its hub. Callers announce after their
write is committed; receivers read rows from the database, so an event carries
ids and small fields only (``events.payloads``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from db.vocabulary import ChatListEventKind, ChatStatus
from events.channels import WORK_CHANNEL, chat_channel, debug_channel, git_channel, owner_channel
from events.hub import EventHub
from events.payloads import (
    ChatErrorInfo,
    ChatFailed,
    ChatListChanged,
    DebugRunChanged,
    DebugRunPhase,
    GitChanged,
    GitRefreshRequested,
    HistoryReset,
    MessageAnnounced,
    PartDelta,
    PartJson,
    QueueChanged,
    RetryScheduled,
    StatusChanged,
    TitleFailed,
    TitleRequested,
    WorkAvailable,
)

log = logging.getLogger(__name__)


class ChatAnnouncer:
    """Typed publishing; one instance per process, around its hub."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def status(
        self,
        owner_id: uuid.UUID,
        chat_id: uuid.UUID,
        status: ChatStatus | str,
        worker_id: str | None = None,
    ) -> None:
        """On the chat's channel (signed by the daemon that announces it, so its
        own watcher skips it), the owner's list, and for PENDING the daemons."""
        status = ChatStatus(status)
        await self.hub.publish(chat_channel(chat_id), StatusChanged(chat_id, status, worker_id))
        await self.list_change(owner_id, chat_id, ChatListEventKind.STATUS_CHANGED)
        if status is ChatStatus.PENDING:
            await self.hub.publish(WORK_CHANNEL, WorkAvailable(chat_id))

    async def part(self, chat_id: uuid.UUID, index: int, part: PartJson, seq: int) -> None:
        """An append-only delta of the running step (text is appended by clients);
        ``seq`` lets a stream that replayed the live step skip what it has."""
        await self.hub.publish(chat_channel(chat_id), PartDelta(chat_id, index, part, seq))

    async def retry(
        self,
        chat_id: uuid.UUID,
        attempt: int,
        delay_ms: int,
        retrying_at: datetime,
        error: ChatErrorInfo,
    ) -> None:
        event = RetryScheduled(chat_id, attempt, delay_ms, retrying_at, error)
        await self.hub.publish(chat_channel(chat_id), event)

    async def failed(self, chat_id: uuid.UUID, error: ChatErrorInfo) -> None:
        await self.hub.publish(chat_channel(chat_id), ChatFailed(chat_id, error))

    async def message(self, chat_id: uuid.UUID, message_id: int) -> None:
        await self.hub.publish(chat_channel(chat_id), MessageAnnounced(chat_id, message_id))

    async def queue(self, chat_id: uuid.UUID) -> None:
        await self.hub.publish(chat_channel(chat_id), QueueChanged(chat_id))

    async def history_reset(self, chat_id: uuid.UUID) -> None:
        await self.hub.publish(chat_channel(chat_id), HistoryReset(chat_id))

    async def list_change(
        self, owner_id: uuid.UUID, chat_id: uuid.UUID, change: ChatListEventKind | str
    ) -> None:
        """``created``, ``title_changed``, ``archived``, ``unarchived``, ``deleted``…"""
        event = ChatListChanged(chat_id, ChatListEventKind(change))
        await self.hub.publish(owner_channel(owner_id), event)

    async def title_failed(self, owner_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        await self.hub.publish(owner_channel(owner_id), TitleFailed(chat_id))

    async def request_title(self, chat_id: uuid.UUID) -> None:
        """Ask a daemon to regenerate the chat's title."""
        await self.hub.publish(WORK_CHANNEL, TitleRequested(chat_id))

    async def debug_run(
        self,
        chat_id: uuid.UUID,
        run_id: uuid.UUID,
        phase: DebugRunPhase | str,
        *,
        status: str,
        step_count: int,
        usage: dict[str, int] | None,
        cost_micros: int | None,
        finished_at: datetime | None,
    ) -> None:
        """A debug run of the chat started, recorded a step, or finished, with its
        row's changing columns as that change committed them: live streams show
        the run as of each change, however late they read the row."""
        event = DebugRunChanged(
            chat_id,
            run_id,
            DebugRunPhase(phase),
            status=status,
            step_count=step_count,
            usage=usage,
            cost_micros=cost_micros,
            finished_at=finished_at,
        )
        await self.hub.publish(debug_channel(chat_id), event)

    async def git_changed(
        self,
        workspace_id: uuid.UUID,
        changed: list[str],
        removed: list[str],
        scanned_at: datetime,
    ) -> None:
        """Repositories whose snapshot changed (read them from workspace_git_snapshots)
        and repositories that disappeared, by root."""
        event = GitChanged(workspace_id, tuple(changed), tuple(removed), scanned_at)
        await self.hub.publish(git_channel(workspace_id), event)

    async def request_git_refresh(self, workspace_id: uuid.UUID) -> None:
        """Ask the daemon watching the workspace to rescan now."""
        await self.hub.publish(WORK_CHANNEL, GitRefreshRequested(workspace_id))
