"""The local workspace backend builds directories completely or not at all, and
workspace rows exist only with their directory."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.workspace_backend import (
    LocalWorkspaceBackend,
    WorkspaceError,
    create_workspace,
    start_workspace,
    stop_workspace,
    touch_workspace,
)
from db.models import User, Workspace, WorkspaceTemplate
from db.vocabulary import WorkspaceSourceKind, WorkspaceStatus

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def template(source: Path | str, kind: WorkspaceSourceKind) -> WorkspaceTemplate:
    return WorkspaceTemplate(
        id=uuid.uuid4(), name=f"tpl-{uuid.uuid4().hex[:6]}", source=str(source), source_kind=kind
    )


def source_repo(path: Path) -> Path:
    path.mkdir()
    (path / "README.md").write_text("hello\n")
    for args in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "-m", "first"]):
        subprocess.run(["git", *args], cwd=path, env=GIT_ENV, check=True)
    return path


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_no_template_makes_an_empty_git_repository(tmp_path: Path) -> None:
    backend = LocalWorkspaceBackend(tmp_path / "ws")
    workspace_id = uuid.uuid4()
    path = await backend.create(workspace_id, None)
    assert path == tmp_path / "ws" / str(workspace_id)
    assert (path / ".git").is_dir()
    assert leftovers(tmp_path / "ws") == [str(workspace_id)]


async def test_git_template_is_cloned(tmp_path: Path) -> None:
    repo = source_repo(tmp_path / "src")
    backend = LocalWorkspaceBackend(tmp_path / "ws")
    path = await backend.create(uuid.uuid4(), template(repo, WorkspaceSourceKind.GIT))
    assert (path / "README.md").read_text() == "hello\n"
    assert (path / ".git").is_dir()


async def test_directory_template_is_copied_with_symlinks_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a")
    (src / "link").symlink_to("sub/a.txt")
    backend = LocalWorkspaceBackend(tmp_path / "ws")
    path = await backend.create(uuid.uuid4(), template(src, WorkspaceSourceKind.DIRECTORY))
    assert (path / "sub" / "a.txt").read_text() == "a"
    assert (path / "link").is_symlink()
    assert os.readlink(path / "link") == "sub/a.txt"


@pytest.mark.parametrize("kind", [WorkspaceSourceKind.GIT, WorkspaceSourceKind.DIRECTORY])
async def test_a_failed_create_leaves_no_directory(tmp_path: Path, kind) -> None:
    root = tmp_path / "ws"
    backend = LocalWorkspaceBackend(root)
    with pytest.raises(WorkspaceError, match=r"failed|not a directory"):
        await backend.create(uuid.uuid4(), template(tmp_path / "missing", kind))
    assert leftovers(root) == []


async def test_a_hanging_clone_times_out_and_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_git = bin_dir / "git"
    # Starts the clone (makes the target, the last argument), then hangs.
    fake_git.write_text('#!/bin/sh\nfor last; do :; done\nmkdir -p "$last"\nexec sleep 30\n')
    fake_git.chmod(fake_git.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "ws"
    backend = LocalWorkspaceBackend(root, git_timeout_s=0.3)
    with pytest.raises(WorkspaceError, match="timed out"):
        await backend.create(
            uuid.uuid4(), template("https://example.invalid/r", WorkspaceSourceKind.GIT)
        )
    assert leftovers(root) == []


async def test_existing_directory_is_refused(tmp_path: Path) -> None:
    backend = LocalWorkspaceBackend(tmp_path)
    workspace_id = uuid.uuid4()
    (tmp_path / str(workspace_id)).mkdir()
    with pytest.raises(WorkspaceError, match="already exists"):
        await backend.create(workspace_id, None)


@pytest.mark.parametrize("directory", ["", "..", "../etc", "a/b"])
def test_paths_stay_under_the_root(tmp_path: Path, directory: str) -> None:
    backend = LocalWorkspaceBackend(tmp_path)
    with pytest.raises(WorkspaceError, match="invalid directory"):
        backend.path(Workspace(id=uuid.uuid4(), directory=directory))


async def test_start_needs_the_directory_and_destroy_removes_it(tmp_path: Path) -> None:
    backend = LocalWorkspaceBackend(tmp_path)
    workspace_id = uuid.uuid4()
    path = await backend.create(workspace_id, None)
    workspace = Workspace(id=workspace_id, directory=path.name)
    assert await backend.start(workspace) == path
    await backend.destroy(workspace)
    assert not path.exists()
    with pytest.raises(WorkspaceError, match="no directory"):
        await backend.start(workspace)
    await backend.destroy(workspace)  # already gone: fine


# -- rows ------------------------------------------------------------------------------


async def new_owner() -> User:
    return await User.create(username=f"w{uuid.uuid4().hex[:8]}", password_hash="x")


async def test_create_workspace_writes_the_row_after_the_directory(app, tmp_path: Path) -> None:
    owner = await new_owner()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    tpl = await WorkspaceTemplate.create(
        name=f"t{uuid.uuid4().hex[:6]}", source=str(src), source_kind=WorkspaceSourceKind.DIRECTORY
    )
    backend = LocalWorkspaceBackend(tmp_path / "ws")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="dev", template=tpl, ttl_s=3600, now=now
    )
    row = await Workspace.get(id=workspace.id)
    assert (row.status, row.ttl_s, row.last_active_at, row.template_id) == (  # type: ignore[attr-defined]
        WorkspaceStatus.RUNNING,
        3600,
        now,
        tpl.id,
    )
    assert row.directory == str(workspace.id)
    assert (backend.path(row) / "f").read_text() == "x"


async def test_a_failed_insert_removes_the_directory(app, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    backend = LocalWorkspaceBackend(root)
    with pytest.raises(Exception, match="foreign key"):
        await create_workspace(backend, owner_id=uuid.uuid4(), name="x", template=None, ttl_s=None)
    assert leftovers(root) == []


async def test_touch_stop_and_start(app, tmp_path: Path) -> None:
    owner = await new_owner()
    backend = LocalWorkspaceBackend(tmp_path)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="dev", template=None, ttl_s=60, now=start
    )
    later = start + timedelta(minutes=5)
    assert await touch_workspace(workspace.id, later)
    assert not await touch_workspace(uuid.uuid4(), later)
    assert (await Workspace.get(id=workspace.id)).last_active_at == later

    assert await stop_workspace(backend, workspace.id, later)
    assert not await stop_workspace(backend, workspace.id, later)  # already stopped
    row = await Workspace.get(id=workspace.id)
    assert (row.status, row.stopped_at) == (WorkspaceStatus.STOPPED, later)

    assert await start_workspace(backend, workspace.id, later) == backend.path(row)
    row = await Workspace.get(id=workspace.id)
    assert (row.status, row.stopped_at) == (WorkspaceStatus.RUNNING, None)
