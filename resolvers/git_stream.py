"""The live git stream behind ``gitChanges``, and ``refreshGitChanges``.

The chat is authorized and its workspace resolved once, at subscribe; a
workspace bound to the chat later is not followed (subscribe again). A chat
without a workspace gets one empty frame and the stream completes.

Otherwise: subscribe to the workspace's git channel first, then send a full
frame from the stored snapshot (every present repository; none when the watcher
has not scanned yet), so nothing published in between is lost. Each event
names changed and removed roots: the changed ones are read from the snapshot
row, the removed ones are sent as ``removed: true`` with an empty diff. Clients
merge frames by root. After a resync from the hub (events were dropped) a full
frame is sent again, with ``removed: true`` entries for roots this stream sent
earlier that are gone now, so merging by root still converges. A change frame
is the same for every subscriber of the chat: it is read and built once per
event (``events.sharing``); full frames stay per subscriber.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from db.git_snapshots import RepoSnapshot, is_sandbox_root
from db.models import Chat, Workspace, WorkspaceGitSnapshot
from events.channels import git_channel
from events.payloads import GitChanged, Resync
from events.sharing import share, shared_read
from resolvers.chat_diffs import aware, present_repositories, stored_repositories
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.errors import bad_input


@dataclass(frozen=True)
class GitChangesRow:
    chat_id: uuid.UUID
    repositories: list[RepoSnapshot]
    scanned_at: datetime


async def chat_workspace(chat: Chat) -> Workspace | None:
    """The chat's workspace when it exists and is the chat owner's."""
    if chat.workspace_id is None:
        return None
    return await Workspace.filter(
        id=chat.workspace_id,
        owner_id=chat.owner_id,  # type: ignore[attr-defined]
    ).first()


class _Stream:
    def __init__(self, chat_id: uuid.UUID, workspace_id: uuid.UUID) -> None:
        self.chat_id = chat_id
        self.workspace_id = workspace_id
        self.sent: set[str] = set()  # roots the client holds as present

    async def _snapshot(self) -> WorkspaceGitSnapshot | None:
        return await WorkspaceGitSnapshot.filter(workspace_id=self.workspace_id).first()

    def _frame(self, repos: list[RepoSnapshot], scanned_at: datetime) -> GitChangesRow:
        frame = GitChangesRow(self.chat_id, repos, scanned_at)
        self._note(frame)
        return frame

    def _note(self, frame: GitChangesRow) -> None:
        for repo in frame.repositories:
            if repo.removed:
                self.sent.discard(repo.root)
            else:
                self.sent.add(repo.root)

    async def full(self) -> GitChangesRow:
        snapshot = await self._snapshot()
        if snapshot is None:
            repos: list[RepoSnapshot] = []
            scanned_at = datetime.now(UTC)
        else:
            repos = [RepoSnapshot.from_json(r) for r in present_repositories(snapshot)]
            scanned_at = aware(snapshot.scanned_at)
        present = {r.root for r in repos}
        gone = [RepoSnapshot.gone(root) for root in sorted(self.sent - present)]
        return self._frame(repos + gone, scanned_at)

    async def changes(self, event: GitChanged) -> GitChangesRow | None:
        read = partial(self._shared_changes, event)
        frame = await shared_read(event, ("git_changes", self.chat_id), read)
        if frame is not None:
            self._note(frame)
        return frame

    async def _shared_changes(self, event: GitChanged) -> GitChangesRow | None:
        frame = await self._changes(event)
        return None if frame is None else share(frame)

    async def _changes(self, event: GitChanged) -> GitChangesRow | None:
        """The frame for one event; it does not depend on what this stream sent."""
        changed = {r for r in event.changed if is_sandbox_root(r)}
        removed = {r for r in event.removed if is_sandbox_root(r)}
        if not changed and not removed:
            return None
        snapshot = await self._snapshot() if changed else None
        stored = {}
        if snapshot is not None:
            stored = {str(r["root"]): r for r in stored_repositories(snapshot)}
        repos = [RepoSnapshot.from_json(stored[root]) for root in sorted(changed) if root in stored]
        repos += [RepoSnapshot.gone(root) for root in sorted(removed - changed)]
        if not repos:
            return None
        scanned_at = aware(snapshot.scanned_at if snapshot is not None else event.scanned_at)
        return GitChangesRow(self.chat_id, repos, scanned_at)


async def git_changes(ctx: RequestContext, chat_gid: str) -> AsyncIterator[GitChangesRow]:
    chat = await own_chat(ctx, chat_gid, "chatId")
    workspace = await chat_workspace(chat)
    if workspace is None:
        yield GitChangesRow(chat.id, [], datetime.now(UTC))
        return
    if ctx.events is None:
        raise RuntimeError("no event hub")
    stream = _Stream(chat.id, workspace.id)
    async with ctx.events.hub.subscribe(git_channel(workspace.id)) as subscription:
        # The first frame is read after subscribing, so nothing falls between.
        yield await stream.full()
        async for event in subscription:
            ctx.reset_loaders()  # loaders live for one event, never the connection
            match event:
                case Resync():
                    yield await stream.full()
                case GitChanged():
                    frame = await stream.changes(event)
                    if frame is not None:
                        yield frame


async def refresh_git_changes(ctx: RequestContext, chat_gid: str) -> bool:
    """Ask the daemon watching the chat's workspace to rescan now."""
    chat = await own_chat(ctx, chat_gid, "chatId")
    workspace = await chat_workspace(chat)
    if workspace is None:
        raise bad_input("chatId", "the chat has no workspace")
    if ctx.events is None:
        raise RuntimeError("no event hub")
    await ctx.events.request_git_refresh(workspace.id)
    return True
