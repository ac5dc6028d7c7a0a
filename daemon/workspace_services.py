"""Everything a daemon runs for workspaces besides turns, started and stopped together.

Git watchers for running workspaces (re-synced periodically, and after a turn
binds one; their git runs in the shell tool's sandbox), the idle-workspace
reaper, the pull-request status worker, and the table of background processes
the shell tool started (in its sandbox).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from daemon.diff_status_worker import DiffStatusWorker
from daemon.git_providers.github import GitHubProvider
from daemon.git_watchers import GitWatchers
from daemon.periodic import Periodic
from daemon.sandbox import Sandbox, SandboxSettings
from daemon.tools.processes import ProcessTable
from daemon.workspace_backend import WorkspaceBackend
from daemon.workspace_reaper import WorkspaceReaper
from db.vocabulary import ChatListEventKind
from events.announcer import ChatAnnouncer
from events.payloads import Event, GitRefreshRequested

log = logging.getLogger(__name__)


@dataclass
class WorkspaceSettings:
    git_cooldown_s: float = 1.0
    git_poll_s: float = 30.0
    watcher_sync_s: float = 5.0
    reap_interval_s: float = 60.0
    github_token: str | None = None
    github_api_url: str = "https://api.github.com"
    # Off by default where nothing can answer: an offline install would only log.
    pull_requests: bool = True
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)


class WorkspaceServices:
    def __init__(
        self,
        backend: WorkspaceBackend,
        events: ChatAnnouncer,
        settings: WorkspaceSettings | None = None,
        processes: ProcessTable | None = None,
    ) -> None:
        self.backend = backend
        self.events = events
        self.settings = settings or WorkspaceSettings()
        self.processes = processes or ProcessTable(sandbox=Sandbox(self.settings.sandbox))
        self.provider: GitHubProvider | None = None
        self.diff_statuses: DiffStatusWorker | None = None
        if self.settings.pull_requests:
            self.provider = GitHubProvider(
                self.settings.github_token, api_url=self.settings.github_api_url
            )
            self.diff_statuses = DiffStatusWorker(self.provider, self._diff_status_changed)
        mark = self.diff_statuses.mark_stale if self.diff_statuses is not None else None
        self.git = GitWatchers(
            backend,
            events,
            mark,
            cooldown_s=self.settings.git_cooldown_s,
            poll_s=self.settings.git_poll_s,
            # Git runs in the same sandbox as the shell tool (see daemon.git_scan).
            sandbox=self.processes.sandbox,
        )
        self.reaper = WorkspaceReaper(backend, interval_s=self.settings.reap_interval_s)
        self._sync = Periodic(self.settings.watcher_sync_s, self.git.sync, "git watcher sync")

    async def start(self) -> None:
        await self.processes.sandbox.announce()
        self._sync.start()
        await self.reaper.start()
        if self.diff_statuses is not None:
            await self.diff_statuses.start()

    async def stop(self) -> None:
        await self._sync.stop()
        await self.reaper.stop()
        if self.diff_statuses is not None:
            await self.diff_statuses.stop()
        await self.git.close()
        await self.processes.close_all()
        if self.provider is not None:
            await self.provider.aclose()

    async def turn_ended(self, chat_id: uuid.UUID, workspace_id: uuid.UUID | None) -> None:
        """Background processes die with their turn; a newly bound workspace is watched."""
        await self.processes.kill_chat(chat_id)
        if workspace_id is not None and workspace_id not in self.git.watchers:
            await self.git.sync()

    async def handle(self, event: Event) -> bool:
        """A work-channel event meant for workspaces; False when it is not one."""
        if not isinstance(event, GitRefreshRequested):
            return False
        try:
            await self.git.refresh(event.workspace_id)
        except Exception:
            log.warning("git refresh failed", exc_info=True)
        return True

    async def _diff_status_changed(self, owner_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        await self.events.list_change(owner_id, chat_id, ChatListEventKind.DIFF_STATUS_CHANGED)
