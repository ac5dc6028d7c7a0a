"""Workspace tables: the deletes that cascade (two of them declared in SQL only),
the ones that do not, and the index the diff-status worker relies on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from tortoise.exceptions import IntegrityError

from db.models import (
    Chat,
    ChatDiffStatus,
    User,
    Workspace,
    WorkspaceGitSnapshot,
    WorkspaceTemplate,
)
from db.raw_sql import fetch
from db.vocabulary import WorkspaceSourceKind, WorkspaceStatus

NOW = datetime(2030, 1, 1, tzinfo=UTC)


async def new_user() -> User:
    return await User.create(username=f"m{uuid.uuid4().hex[:8]}", password_hash="x")


async def new_template(name: str | None = None) -> WorkspaceTemplate:
    return await WorkspaceTemplate.create(
        name=name or f"t{uuid.uuid4().hex[:8]}",
        source="https://github.com/acme/widgets.git",
        source_kind=WorkspaceSourceKind.GIT,
    )


async def new_workspace(owner: User, template: WorkspaceTemplate | None) -> Workspace:
    workspace_id = uuid.uuid4()
    return await Workspace.create(
        id=workspace_id,
        owner=owner,
        template=template,
        name="dev",
        directory=str(workspace_id),
        last_active_at=NOW,
    )


async def test_workspace_defaults_and_template_removal(app) -> None:
    template = await new_template()
    assert (template.description, template.deprecated, template.default_ttl_s) == ("", False, None)
    workspace = await new_workspace(await new_user(), template)
    assert (workspace.status, workspace.ttl_s, workspace.stopped_at) == (
        WorkspaceStatus.RUNNING,
        None,
        None,
    )
    await template.delete()
    row = await Workspace.get(id=workspace.id)
    assert row.template_id is None  # type: ignore[attr-defined]


async def test_template_names_are_unique(app) -> None:
    name = f"unique-{uuid.uuid4().hex[:6]}"
    await new_template(name)
    with pytest.raises(IntegrityError):
        await new_template(name)


async def test_snapshots_go_with_their_workspace_and_workspaces_with_their_owner(app) -> None:
    owner = await new_user()
    workspace = await new_workspace(owner, None)
    repos = [{"root": "/w/r", "branch": "main", "remoteOrigin": None, "unifiedDiff": ""}]
    await WorkspaceGitSnapshot.create(workspace_id=workspace.id, repositories=repos, scanned_at=NOW)
    assert (await WorkspaceGitSnapshot.get(workspace_id=workspace.id)).repositories == repos
    with pytest.raises(IntegrityError):  # the SQL-only foreign key holds
        await WorkspaceGitSnapshot.create(workspace_id=uuid.uuid4(), scanned_at=NOW)
    await owner.delete()
    assert not await Workspace.exists(id=workspace.id)
    assert not await WorkspaceGitSnapshot.exists(workspace_id=workspace.id)


async def test_diff_statuses_go_with_their_chat(app) -> None:
    owner = await new_user()
    chat_id = uuid.uuid4()
    await Chat.create(id=chat_id, owner=owner, root_id=chat_id, title="t", updated_at=NOW)
    await ChatDiffStatus.create(chat_id=chat_id, git_branch="spin", stale_at=NOW)
    with pytest.raises(IntegrityError):
        await ChatDiffStatus.create(chat_id=uuid.uuid4())
    await Chat.filter(id=chat_id).delete()
    assert not await ChatDiffStatus.exists(chat_id=chat_id)


async def test_stale_rows_have_a_partial_index(app) -> None:
    rows = await fetch(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'chat_diff_statuses_stale_at_idx'"
    )
    assert rows
    assert "WHERE (stale_at IS NOT NULL)" in rows[0]["indexdef"]
