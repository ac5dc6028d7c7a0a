"""Workspaces, the templates they are made from, and what git says about them.

A workspace's files live on the daemon's disk under a root it is configured
with; rows keep only the directory's name under that root, so moving the root
moves nothing in the database. The git rows are caches: the watcher's latest
scan, and a chat's pull request as the git provider last reported it, so reads
never wait on a scan or on the provider.

Those two are keyed by their owner's id with the foreign key declared in SQL
only: Tortoise's migration state never settles on a one-to-one primary key
(``makemigrations`` would alter it forever), so look them up by id.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from db.models.user import User
from db.vocabulary import (
    WORKSPACE_NAME_MAX,
    WORKSPACE_TEMPLATE_NAME_MAX,
    PullRequestState,
    WorkspaceSourceKind,
    WorkspaceStatus,
)


class WorkspaceTemplate(Model):
    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=WORKSPACE_TEMPLATE_NAME_MAX, unique=True)
    description = fields.TextField(default="")
    # A repository URL or path to clone, or a directory to copy (``source_kind``).
    source = fields.TextField()
    source_kind = fields.CharEnumField(WorkspaceSourceKind, max_length=16)
    deprecated = fields.BooleanField(default=False)
    # Used when the site TTL is 0; null means such workspaces never autostop.
    default_ttl_s = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "workspace_templates"

    def __repr__(self) -> str:
        return f"<WorkspaceTemplate {self.name} {self.id}>"


class Workspace(Model):
    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="workspaces", on_delete=fields.CASCADE
    )
    template: fields.ForeignKeyNullableRelation[WorkspaceTemplate] = fields.ForeignKeyField(
        "models.WorkspaceTemplate", related_name="workspaces", null=True, on_delete=fields.SET_NULL
    )
    name = fields.CharField(max_length=WORKSPACE_NAME_MAX)
    # Relative to the workspaces root, never an absolute path.
    directory = fields.TextField()
    status = fields.CharEnumField(WorkspaceStatus, max_length=16, default=WorkspaceStatus.RUNNING)
    # Seconds of inactivity before the reaper stops it; null = never.
    ttl_s = fields.IntField(null=True)
    last_active_at = fields.DatetimeField()
    stopped_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "workspaces"
        # The reaper's scan: running workspaces by idleness.
        indexes = (("status", "last_active_at"),)

    def __repr__(self) -> str:
        return f"<Workspace {self.name} {self.id}>"


class WorkspaceGitSnapshot(Model):
    """The git watcher's latest full scan, served as a subscription's first frame."""

    # References workspaces(id) ON DELETE CASCADE (constraint in the migration).
    workspace_id = fields.UUIDField(primary_key=True)
    # [{root, branch, remoteOrigin, unifiedDiff, removed, additions, deletions, changedFiles}]
    repositories: fields.Field[Any] = fields.JSONField(default=list)
    scanned_at = fields.DatetimeField()

    class Meta:
        table = "workspace_git_snapshots"


# What the git provider reports about a chat's pull request (and chat lists show):
# a refresh that changes none of these publishes nothing; a row with none set
# reads as "no pull request".
PULL_REQUEST_FIELDS = (
    "url",
    "pull_request_state",
    "pull_request_title",
    "pr_number",
    "base_branch",
    "head_branch",
    "author_login",
    "commits",
    "approved",
    "reviewer_count",
    "changes_requested",
    "additions",
    "deletions",
    "changed_files",
)


class ChatDiffStatus(Model):
    """A chat's branch and its pull request; ``stale_at`` queues it for a refresh."""

    # References chats(id) ON DELETE CASCADE (constraint in the migration).
    chat_id = fields.UUIDField(primary_key=True)
    git_branch: str | None = fields.TextField(null=True)
    git_remote_origin: str | None = fields.TextField(null=True)
    url: str | None = fields.TextField(null=True)
    pull_request_state = fields.CharEnumField(PullRequestState, max_length=8, null=True)
    pull_request_title: str | None = fields.TextField(null=True)
    pr_number = fields.IntField(null=True)
    base_branch: str | None = fields.TextField(null=True)
    head_branch: str | None = fields.TextField(null=True)
    author_login: str | None = fields.TextField(null=True)
    commits = fields.IntField(null=True)
    approved = fields.BooleanField(null=True)
    reviewer_count = fields.IntField(null=True)
    changes_requested = fields.BooleanField(null=True)
    additions = fields.IntField(null=True)
    deletions = fields.IntField(null=True)
    changed_files = fields.IntField(null=True)
    # The pull request's unified diff, so reads never call the provider.
    remote_diff: str | None = fields.TextField(null=True)
    # Non-null: needs a refresh (partial index in the migration).
    stale_at = fields.DatetimeField(null=True)
    # A worker holds the row until then; after it, anyone may retry.
    lease_until = fields.DatetimeField(null=True)
    refreshed_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "chat_diff_statuses"
