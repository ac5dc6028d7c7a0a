"""Workspace context files: which are read, how they are shown to the model, their
caps, and that a workspace written by the agent cannot make the daemon read the host."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from starlette.applications import Starlette

from daemon.context_files import (
    FILE_MAX_BYTES,
    TOTAL_MAX_BYTES,
    ContextFile,
    read_context_files,
    read_from,
    repository_roots,
)
from daemon.workspace_backend import LocalWorkspaceBackend, create_workspace
from db.models import User, WorkspaceGitSnapshot

INTRO = "Instructions from files in the workspace, for working in the directory each file lies in:"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "workspace"
    directory.mkdir()
    return directory


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def test_an_agents_md_at_the_root_is_shown_under_its_workspace_path(workspace: Path) -> None:
    write(workspace / "AGENTS.md", "Run make check before you commit.\n")
    found = read_from(workspace, [])
    assert found.text == "\n".join(
        [
            "<workspace-context-files>",
            INTRO,
            '<context-file path="/workspace/AGENTS.md">',
            "Run make check before you commit.",
            "</context-file>",
            "</workspace-context-files>",
        ]
    )
    assert found.files == (ContextFile("/workspace/AGENTS.md", 34, 34),)
    assert found.to_json() == [
        {"path": "/workspace/AGENTS.md", "size": 34, "includedBytes": 34, "truncated": False}
    ]
    assert str(workspace) not in found.text  # no host path reaches the model


def test_without_files_there_is_no_section(workspace: Path) -> None:
    write(workspace / "README.md", "not a context file")
    found = read_from(workspace, ["/workspace"])
    assert (found.text, found.files) == ("", ())


def test_every_name_in_the_root_and_in_each_repository_root(workspace: Path) -> None:
    write(workspace / ".github/copilot-instructions.md", "copilot")
    write(workspace / ".cursorrules", "cursor")
    write(workspace / "CLAUDE.md", "claude")
    write(workspace / "AGENTS.md", "agents")
    write(workspace / "app/AGENTS.md", "app agents")
    write(workspace / "lib/deep/CLAUDE.md", "deep claude")
    write(workspace / "unwatched/AGENTS.md", "not a repository the watcher knows")

    found = read_from(workspace, ["/workspace", "/workspace/lib/deep", "/workspace/app"])
    assert [f.path for f in found.files] == [
        "/workspace/AGENTS.md",
        "/workspace/CLAUDE.md",
        "/workspace/.cursorrules",
        "/workspace/.github/copilot-instructions.md",
        "/workspace/lib/deep/CLAUDE.md",
        "/workspace/app/AGENTS.md",
    ]
    assert '<context-file path="/workspace/app/AGENTS.md">\napp agents\n</context-file>' in (
        found.text
    )
    assert "not a repository" not in found.text


def test_a_symlink_pointing_outside_the_workspace_is_not_read(
    workspace: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's secret")
    (workspace / "AGENTS.md").symlink_to(secret)
    (workspace / "CLAUDE.md").symlink_to("../host-secret.txt")
    outside = tmp_path / "outside"
    write(outside / "copilot-instructions.md", "the host's other secret")
    (workspace / ".github").symlink_to(outside)  # a linked parent directory

    found = read_from(workspace, [])
    assert (found.text, found.files) == ("", ())


def test_a_repository_root_outside_the_workspace_is_not_read(
    workspace: Path, tmp_path: Path
) -> None:
    write(tmp_path / "elsewhere/AGENTS.md", "outside")
    (workspace / "linked").symlink_to(tmp_path / "elsewhere")
    found = read_from(workspace, ["/workspace/../elsewhere", "/workspace/linked", "/srv/app"])
    assert (found.text, found.files) == ("", ())


def test_a_link_inside_the_workspace_is_followed_and_a_file_is_included_once(
    workspace: Path,
) -> None:
    write(workspace / "docs/AGENTS.md", "shared instructions")
    (workspace / "AGENTS.md").symlink_to("docs/AGENTS.md")
    (workspace / "CLAUDE.md").symlink_to("AGENTS.md")
    found = read_from(workspace, [])
    assert [f.path for f in found.files] == ["/workspace/AGENTS.md"]
    assert found.text.count("shared instructions") == 1


def test_only_regular_files_are_read(workspace: Path) -> None:
    os.mkfifo(workspace / "AGENTS.md")  # would block a plain open
    (workspace / "CLAUDE.md").mkdir()
    write(workspace / ".cursorrules", "cursor")
    found = read_from(workspace, [])
    assert [f.path for f in found.files] == ["/workspace/.cursorrules"]


def test_invalid_utf8_and_nul_are_replaced(workspace: Path) -> None:
    write(workspace / "AGENTS.md", b"caf\xc3\xa9 \xff\xfe bad \x00 end")
    found = read_from(workspace, [])
    assert "café \ufffd\ufffd bad \ufffd end" in found.text
    assert "\x00" not in found.text


def test_a_file_over_its_cap_is_cut_at_a_whole_character_and_says_so(workspace: Path) -> None:
    body = "x" * (FILE_MAX_BYTES - 1) + "é" * 10  # the cap falls inside an 'é'
    write(workspace / "AGENTS.md", body)
    size = len(body.encode())
    found = read_from(workspace, [])
    assert found.files == (ContextFile("/workspace/AGENTS.md", size, FILE_MAX_BYTES),)
    assert found.files[0].truncated
    assert f'<context-file path="/workspace/AGENTS.md" truncated="true" size="{size}">' in (
        found.text
    )
    shown = "x" * (FILE_MAX_BYTES - 1)
    assert f"{shown}\n[truncated: the first {FILE_MAX_BYTES} of {size} bytes]\n" in found.text
    assert "\ufffd" not in found.text


def test_the_total_cap_leaves_later_files_out(workspace: Path) -> None:
    roots = []
    for index in range(4):
        write(workspace / f"r{index}/AGENTS.md", "y" * FILE_MAX_BYTES)
        roots.append(f"/workspace/r{index}")
    found = read_from(workspace, roots)
    assert sum(f.included for f in found.files) == TOTAL_MAX_BYTES
    assert [f.included for f in found.files] == [FILE_MAX_BYTES, FILE_MAX_BYTES, 0, 0]
    assert "/workspace/r2/AGENTS.md" not in found.text
    assert len(found.text.encode()) < TOTAL_MAX_BYTES + 1024


# -- the repository roots the git watcher knows -------------------------------------------


async def test_roots_come_from_the_workspace_s_git_snapshot(app: Starlette, tmp_path: Path) -> None:
    backend = LocalWorkspaceBackend(tmp_path / "workspaces")
    owner = await User.create(username=f"cf{uuid.uuid4().hex[:8]}", password_hash="x")
    row = await create_workspace(backend, owner_id=owner.id, name="w", template=None, ttl_s=None)
    directory = backend.root / row.directory
    write(directory / "AGENTS.md", "root")
    write(directory / "app/AGENTS.md", "app")
    write(directory / "gone/AGENTS.md", "removed repository")

    # No snapshot yet: only the workspace root.
    assert await repository_roots(row.id) == []
    found = await read_context_files(directory, row.id)
    assert [f.path for f in found.files] == ["/workspace/AGENTS.md"]

    repo = {"unifiedDiff": "x" * 1000, "additions": 1, "deletions": 0, "changedFiles": 1}
    await WorkspaceGitSnapshot.create(
        workspace_id=row.id,
        repositories=[
            {**repo, "root": "/workspace/app", "removed": False},
            {**repo, "root": "/workspace/gone", "removed": True},
            {**repo, "root": "/workspace"},
        ],
        scanned_at=row.created_at,
    )
    assert await repository_roots(row.id) == ["/workspace/app", "/workspace"]
    found = await read_context_files(directory, row.id)
    assert [f.path for f in found.files] == ["/workspace/AGENTS.md", "/workspace/app/AGENTS.md"]

    # Without a workspace there is nothing to read.
    assert (await read_context_files(None, row.id)).files == ()
