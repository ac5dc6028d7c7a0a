"""Untracked files are read on the host, so never through a symlink: the agent
can swap a listed path's directory for one between git's listing and the read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.untracked_diff import untracked_diff
from db.diff_files import DiffFile, diff_files

BUDGET = 1024 * 1024


@pytest.fixture
def workspace_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "ws", os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def layout(tmp_path: Path) -> None:
    """A host file outside the workspace, and a repository ``app`` whose listed
    paths now lead there through symlinks."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret\n")
    repo = tmp_path / "ws" / "app"
    repo.mkdir(parents=True)
    (repo / "mine.txt").write_text("mine\n")
    (repo / "dir").symlink_to(outside)  # was a directory when git listed dir/secret.txt
    (repo / "link").symlink_to(outside / "secret.txt")
    (tmp_path / "ws" / "applink").symlink_to(outside)
    os.mkfifo(repo / "pipe")


def test_paths_through_a_symlink_are_not_read(workspace_fd: int) -> None:
    listed = [
        "dir/secret.txt",
        "link",
        "mine.txt",
        "pipe",
        "../outside/secret.txt",
        "/etc/hostname",
    ]

    added = untracked_diff(workspace_fd, ["app"], listed, BUDGET)

    text = added.text.decode()
    assert "host secret" not in text
    assert diff_files(text) == [
        DiffFile("link", None, "added", 1, 0),  # its target's name, as git shows a symlink
        DiffFile("mine.txt", None, "added", 1, 0),
    ]
    assert (added.files, added.lines, added.omitted) == (2, 2, 0)


def test_a_repository_root_swapped_for_a_symlink_is_not_read(workspace_fd: int) -> None:
    added = untracked_diff(workspace_fd, ["applink"], ["secret.txt"], BUDGET)
    assert (added.text, added.files, added.lines) == (b"", 0, 0)


def test_over_budget_files_are_counted_not_read_through_symlinks(workspace_fd: int) -> None:
    added = untracked_diff(workspace_fd, ["app"], ["dir/secret.txt", "mine.txt"], 0)
    assert added.text == b""
    assert (added.files, added.lines) == (1, 1)
    assert added.omitted > 0
