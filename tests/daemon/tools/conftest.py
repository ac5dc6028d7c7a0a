"""Fixtures for the workspace-tool tests: a workspace, its turn, a process table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.tools import ProcessTable
from tests.daemon.tools.workspace_turn import FakeTurn


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace, holding a secret no tool may touch."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text("top secret\n")
    return directory


@pytest.fixture
def turn(workspace: Path) -> FakeTurn:
    return FakeTurn(workspace_dir=workspace)


@pytest.fixture
async def processes() -> AsyncIterator[ProcessTable]:
    table = ProcessTable()
    yield table
    await table.close_all()
