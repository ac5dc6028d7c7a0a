"""Diffs and git: a chat's diff and pull-request status, the git stream's frames,
and the mutation that asks the watcher for a rescan."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import ChatDiffStatus
from resolvers import git_stream, global_id
from resolvers.chat_diffs import DiffSource
from schema.info import Info

DiffSourceEnum = strawberry.enum(DiffSource, name="DiffSource")


@strawberry.type(description="One file of a unified diff, with its line counts.")
class DiffFile:
    path: str
    old_path: str | None = strawberry.field(description="The previous path of a renamed file.")
    status: str = strawberry.field(description="added, deleted, renamed or modified.")
    additions: int = strawberry.field(description="0 for binary files.")
    deletions: int = strawberry.field(description="0 for binary files.")


@strawberry.type(
    description="A chat's changes: the pull request's diff (REMOTE), else the workspace's "
    "working tree (LOCAL), else empty with a reason (NONE)."
)
class ChatDiff:
    source: DiffSource
    reason: str | None = strawberry.field(
        description="Why it is empty (NONE only): no workspace, workspace stopped, "
        "watcher not running, timed out."
    )
    unified_diff: str = strawberry.field(description="LOCAL: each repository's diff in root order.")
    files: list[DiffFile]
    additions: int = strawberry.field(description="Added lines over all files.")
    deletions: int = strawberry.field(description="Deleted lines over all files.")
    repositories: int = strawberry.field(description="LOCAL: how many repositories it spans.")
    scanned_at: datetime | None = strawberry.field(
        description="When it was read: the watcher's scan (LOCAL, or the last one when timed "
        "out) or the provider's refresh (REMOTE)."
    )


def _pull_request_state(root: ChatDiffStatus) -> str | None:
    state = root.pull_request_state
    return None if state is None else str(state.value)


@strawberry.type(description="The pull request of a chat's branch, as the git provider reported.")
class DiffStatus:
    url: str | None = strawberry.field(description="The pull request's or branch's URL.")
    pull_request_state: str | None = strawberry.field(
        resolver=_pull_request_state, description="open, draft, merged or closed."
    )
    pull_request_title: str | None
    pr_number: int | None
    base_branch: str | None
    head_branch: str | None
    author_login: str | None
    commits: int | None
    approved: bool | None
    reviewer_count: int | None
    changes_requested: bool | None
    additions: int | None
    deletions: int | None
    changed_files: int | None
    refreshed_at: datetime | None = strawberry.field(
        description="When the provider was last asked."
    )


@strawberry.type(description="One repository of a workspace, as the git watcher saw it.")
class GitRepository:
    root: str = strawberry.field(
        description="The repository's directory as the workspace's commands see it: "
        "/workspace, or a directory under it (/workspace/app)."
    )
    branch: str | None
    remote_origin: str | None
    unified_diff: str
    removed: bool = strawberry.field(description="The repository is gone; drop it.")
    additions: int
    deletions: int
    changed_files: int


def _chat_id(root: git_stream.GitChangesRow) -> strawberry.ID:
    return strawberry.ID(global_id.encode("Chat", root.chat_id))


@strawberry.type(
    description="Repositories of the chat's workspace: all of them in the first frame "
    "(and after a resync), then only those that changed. Merge by root."
)
class GitChanges:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    repositories: list[GitRepository]
    scanned_at: datetime


@strawberry.type
class GitMutations:
    @strawberry.mutation(
        description="Ask the watcher of the chat's workspace to rescan now; the result "
        "arrives on gitChanges."
    )
    async def refresh_git_changes(self, info: Info, chat_id: strawberry.ID) -> bool:
        return await git_stream.refresh_git_changes(info.context, chat_id)
