"""One git watcher per running workspace, and what their scans lead to.

Every scan that changed something is stored as the workspace's latest
snapshot (so GraphQL reads and first subscription frames never wait on git),
then announced by root on the workspace's git channel. When a chat's branch
or origin changes, its pull-request status is queued for a refresh.

Git runs in the shell tool's sandbox (``daemon.git_scan``); while none is
usable, no workspace is watched: the diffs stay empty, and the operator is
told once why.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from daemon.git_scan import GitScanner
from daemon.git_watcher import GitWatcher
from daemon.sandbox import INSTALL_HINT, Sandbox
from daemon.workspace_backend import WorkspaceBackend, WorkspaceError
from db.git_snapshots import RepoSnapshot
from db.models import Chat, ChatDiffStatus, Workspace, WorkspaceGitSnapshot
from db.vocabulary import WorkspaceStatus
from events.announcer import ChatAnnouncer

log = logging.getLogger(__name__)

MarkStale = Callable[[uuid.UUID, str | None, str | None], Awaitable[None]]


class GitWatchers:
    def __init__(
        self,
        backend: WorkspaceBackend,
        events: ChatAnnouncer | None,
        mark_stale: MarkStale | None = None,
        *,
        cooldown_s: float = 1.0,
        poll_s: float = 30.0,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.backend = backend
        self.events = events
        self.mark_stale = mark_stale
        self.cooldown_s = cooldown_s
        self.poll_s = poll_s
        self.watchers: dict[uuid.UUID, GitWatcher] = {}
        self._lock = asyncio.Lock()
        self._touched = 0.0
        self.scanner = GitScanner(sandbox or Sandbox())
        self._unavailable: str | None = None

    async def sync(self) -> None:
        """Watch exactly the running workspaces (called periodically and on demand);
        none while git can't run sandboxed (see ``daemon.git_scan``)."""
        async with self._lock:
            if await self._scans_unavailable():
                return
            running = {
                w.id: w for w in await Workspace.filter(status=WorkspaceStatus.RUNNING).all()
            }
            for workspace_id in [k for k in self.watchers if k not in running]:
                await self.watchers.pop(workspace_id).stop()
            for workspace_id, workspace in running.items():
                if workspace_id in self.watchers:
                    continue
                try:
                    path = self.backend.path(workspace)
                except WorkspaceError:
                    log.warning("workspace %s has no usable directory", workspace_id)
                    continue
                if path.is_dir():
                    await self._watch(workspace_id, path)
            await self._touch()

    async def _scans_unavailable(self) -> bool:
        """True, with watchers stopped and the reason logged once, when git can't
        run sandboxed: no diffs then, rather than git on the host."""
        reason = await self.scanner.unavailable()
        if reason is None:
            if not self.scanner.sandbox.enabled and self._unavailable is None:
                self._unavailable = "unsandboxed"
                log.warning(
                    "AGENTGQL_SANDBOX=none: git scans run on the host as the server's user, "
                    "and an agent's .git/config can make them run any command there"
                )
            return False
        if reason != self._unavailable:
            self._unavailable = reason
            log.warning("git diffs are off: %s; %s", reason, INSTALL_HINT)
        for watcher in self.watchers.values():
            await watcher.stop()
        self.watchers.clear()
        return True

    async def _touch(self) -> None:
        """Quiet workspaces publish nothing; their snapshot's ``scanned_at`` still
        moves (once a poll), so readers can tell a live watcher from a dead one."""
        now = time.monotonic()
        if not self.watchers or now - self._touched < self.poll_s:
            return
        self._touched = now
        await WorkspaceGitSnapshot.filter(workspace_id__in=list(self.watchers)).update(
            scanned_at=datetime.now(UTC)
        )

    async def _watch(self, workspace_id: uuid.UUID, path: Path) -> None:
        async def changed(repos: list[RepoSnapshot]) -> None:
            await self._publish(workspace_id, repos)

        watcher = GitWatcher(
            path, changed, cooldown_s=self.cooldown_s, poll_s=self.poll_s, scanner=self.scanner
        )
        self.watchers[workspace_id] = watcher
        try:
            await watcher.start()
        except Exception:
            self.watchers.pop(workspace_id, None)
            log.exception("watching workspace %s failed", workspace_id)

    async def refresh(self, workspace_id: uuid.UUID) -> bool:
        """Rescan now and announce every repository (a client asked)."""
        watcher = self.watchers.get(workspace_id)
        if watcher is None:
            await self.sync()
            watcher = self.watchers.get(workspace_id)
        if watcher is None:
            return False
        repos = await watcher.refresh()
        await self._publish(workspace_id, repos, full=True)
        return True

    async def _publish(
        self, workspace_id: uuid.UUID, changed: list[RepoSnapshot], full: bool = False
    ) -> None:
        watcher = self.watchers.get(workspace_id)
        current = watcher.latest if watcher is not None else [r for r in changed if not r.removed]
        scanned_at = datetime.now(UTC)
        await WorkspaceGitSnapshot.update_or_create(
            defaults={
                "repositories": [r.to_json() for r in current],
                "scanned_at": scanned_at,
            },
            workspace_id=workspace_id,
        )
        roots = [r.root for r in (current if full else changed) if not r.removed]
        removed = [r.root for r in changed if r.removed]
        if self.events is not None:
            await self.events.git_changed(workspace_id, roots, removed, scanned_at)
        await self._track_branches(workspace_id, current)

    async def _track_branches(self, workspace_id: uuid.UUID, repos: list[RepoSnapshot]) -> None:
        """Queue a PR lookup for chats whose primary repository's branch/origin moved."""
        if self.mark_stale is None:
            return
        primary = next((r for r in repos if r.branch and not r.removed), None)
        branch = primary.branch if primary else None
        origin = primary.remote_origin if primary else None
        chats: list[uuid.UUID] = [
            c.id for c in await Chat.filter(workspace_id=workspace_id, archived=False).only("id")
        ]
        if not chats:
            return
        known = {
            row.chat_id: (row.git_branch, row.git_remote_origin)
            for row in await ChatDiffStatus.filter(chat_id__in=chats)
        }
        for chat_id in chats:
            if known.get(chat_id) != (branch, origin):
                await self.mark_stale(chat_id, branch, origin)

    async def close(self) -> None:
        async with self._lock:
            for watcher in self.watchers.values():
                await watcher.stop()
            self.watchers.clear()
