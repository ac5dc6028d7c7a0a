"""A chat's diff and its pull-request status, read from the git caches.

``Chat.diff`` never fails and never waits on git or the provider. In order:

- REMOTE: the chat's branch has a pull request whose diff the diff-status
  worker stored (``chat_diff_statuses.remote_diff``);
- LOCAL: the chat's workspace is running and the git watcher has a recent
  snapshot: the diffs of its present repositories, concatenated in root order;
- NONE: an empty diff and a ``reason`` (one of the ``NO_*`` / ``*_REASON``
  constants below).

A snapshot older than ``STALE_AFTER_S`` means the watcher stopped reporting
(it rewrites the snapshot at least once per poll), so it is not shown.

``Chat.diffStatus`` is null until the git provider has reported something for
the chat's branch: no row, or a row whose pull-request fields are all null (the
watcher creates the row with just the branch, before any refresh).

Both read through the request's dataloaders, so a page of chats costs one query
for diff statuses and one for workspaces with their snapshots.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from db.diff_files import DiffFile, diff_files
from db.git_snapshots import is_sandbox_root
from db.models import Chat, ChatDiffStatus, WorkspaceGitSnapshot
from db.models.workspace import PULL_REQUEST_FIELDS
from db.vocabulary import WorkspaceStatus
from resolvers.context import RequestContext
from resolvers.loaders import WorkspaceGit

# The git watcher polls every 30 s; three missed polls and its snapshot is stale.
WATCHER_POLL_S = 30
STALE_AFTER_S = 3 * WATCHER_POLL_S

NO_WORKSPACE = "no workspace"
WORKSPACE_STOPPED = "workspace stopped"
WATCHER_NOT_RUNNING = "watcher not running"
TIMED_OUT = "timed out"


class DiffSource(StrEnum):
    REMOTE = "remote"
    LOCAL = "local"
    NONE = "none"


@dataclass
class ChatDiffView:
    source: DiffSource
    unified_diff: str = ""
    reason: str | None = None
    # The watcher's scan (LOCAL, or the stale one when timed out) or the
    # provider refresh (REMOTE); null when nothing was ever read.
    scanned_at: datetime | None = None
    repositories: int = 0

    @cached_property
    def files(self) -> list[DiffFile]:
        """Parsed on first use: a diff can be megabytes and a client may not ask."""
        return diff_files(self.unified_diff) if self.unified_diff else []

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


def stored_repositories(snapshot: WorkspaceGitSnapshot) -> list[dict[str, Any]]:
    """The snapshot's well-formed entries whose root may be shown: an in-sandbox
    path. (Rows from before roots were mapped name host directories; the
    watcher rewrites them on its first scan.)"""
    return [
        r
        for r in (snapshot.repositories or [])
        if isinstance(r, dict) and isinstance(r.get("root"), str) and is_sandbox_root(r["root"])
    ]


def present_repositories(snapshot: WorkspaceGitSnapshot) -> list[dict[str, Any]]:
    """The snapshot's repositories that still exist, in root order."""
    repos = [r for r in stored_repositories(snapshot) if not r.get("removed")]
    return sorted(repos, key=lambda r: str(r["root"]))


def concatenated_diff(repos: list[dict[str, Any]]) -> str:
    """Each repository's diff in turn, each ending with a newline."""
    chunks = []
    for repo in repos:
        text = str(repo.get("unifiedDiff") or "")
        if text:
            chunks.append(text if text.endswith("\n") else text + "\n")
    return "".join(chunks)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def workspace_of(chat: Chat, found: WorkspaceGit | None) -> WorkspaceGit | None:
    """The chat's workspace, when it exists and belongs to the chat's owner."""
    if found is None or found.owner_id != chat.owner_id:  # type: ignore[attr-defined]
        return None
    return found


def local_diff(found: WorkspaceGit | None, now: datetime) -> ChatDiffView:
    if found is None:
        return ChatDiffView(DiffSource.NONE, reason=NO_WORKSPACE)
    if found.status is not WorkspaceStatus.RUNNING:
        return ChatDiffView(DiffSource.NONE, reason=WORKSPACE_STOPPED)
    snapshot = found.snapshot
    if snapshot is None:
        return ChatDiffView(DiffSource.NONE, reason=WATCHER_NOT_RUNNING)
    scanned_at = aware(snapshot.scanned_at)
    if (now - scanned_at).total_seconds() > STALE_AFTER_S:
        return ChatDiffView(DiffSource.NONE, reason=TIMED_OUT, scanned_at=scanned_at)
    repos = present_repositories(snapshot)
    return ChatDiffView(
        DiffSource.LOCAL,
        unified_diff=concatenated_diff(repos),
        scanned_at=scanned_at,
        repositories=len(repos),
    )


async def chat_diff(ctx: RequestContext, chat: Chat) -> ChatDiffView:
    status: ChatDiffStatus | None = await ctx.loaders.diff_statuses.load(chat.id)
    if status is not None and status.remote_diff is not None:
        return ChatDiffView(
            DiffSource.REMOTE,
            unified_diff=status.remote_diff,
            scanned_at=None if status.refreshed_at is None else aware(status.refreshed_at),
        )
    workspace_id: uuid.UUID | None = chat.workspace_id
    found = None
    if workspace_id is not None:
        found = workspace_of(chat, await ctx.loaders.git_snapshots.load(workspace_id))
    return local_diff(found, datetime.now(UTC))


def has_pull_request_fields(status: ChatDiffStatus) -> bool:
    return any(getattr(status, name) is not None for name in PULL_REQUEST_FIELDS)


async def diff_status(ctx: RequestContext, chat: Chat) -> ChatDiffStatus | None:
    status: ChatDiffStatus | None = await ctx.loaders.diff_statuses.load(chat.id)
    if status is None or not has_pull_request_fields(status):
        return None
    return status
