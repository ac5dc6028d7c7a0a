"""write_file: creates or replaces files inside the workspace, never outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.tool_registry import ToolError
from daemon.tools.write_file import TOOL
from tests.daemon.tools.workspace_turn import FakeTurn

write_file = TOOL.run


async def test_creates_the_file_and_its_parents(workspace: Path, turn: FakeTurn) -> None:
    result = await write_file({"path": "src/pkg/café.py", "content": "name = 'café'\n"}, turn)

    assert result == {"path": "src/pkg/café.py", "bytesWritten": 15, "created": True}
    assert (workspace / "src/pkg/café.py").read_text() == "name = 'café'\n"


async def test_overwrites_an_existing_file(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.txt").write_text("old content that is longer\n")

    result = await write_file({"path": str(workspace / "a.txt"), "content": "new\n"}, turn)

    assert result["created"] is False
    assert (workspace / "a.txt").read_text() == "new\n"


async def test_writing_through_a_symlink_to_outside_is_refused(
    workspace: Path, outside: Path, turn: FakeTurn
) -> None:
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    (workspace / "dangling.txt").symlink_to(outside / "planted.txt")

    for raw in ("link.txt", "dangling.txt"):
        with pytest.raises(ToolError, match="path escapes the workspace"):
            await write_file({"path": raw, "content": "pwned\n"}, turn)

    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert not (outside / "planted.txt").exists()


async def test_writing_into_a_symlinked_directory_outside_is_refused(
    workspace: Path, outside: Path, turn: FakeTurn
) -> None:
    (workspace / "linkdir").symlink_to(outside)

    with pytest.raises(ToolError, match="path escapes the workspace"):
        await write_file({"path": "linkdir/sub/new.txt", "content": "x"}, turn)

    assert not (outside / "sub").exists()


async def test_traversal_writes_nothing(workspace: Path, tmp_path: Path, turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="path escapes the workspace"):
        await write_file({"path": "../escaped.txt", "content": "x"}, turn)
    assert not (tmp_path / "escaped.txt").exists()


async def test_directory_target_is_refused(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "dir").mkdir()
    with pytest.raises(ToolError, match="dir is a directory"):
        await write_file({"path": "dir", "content": "x"}, turn)


async def test_plan_mode_writes_only_the_plan_file(workspace: Path) -> None:
    plan = workspace / ".agent" / "plan.md"
    turn = FakeTurn(workspace_dir=workspace, plan_mode=True, plan_path=str(plan))

    with pytest.raises(ToolError, match="plan mode allows writing only the plan file"):
        await write_file({"path": "main.py", "content": "print(1)\n"}, turn)
    result = await write_file({"path": str(plan), "content": "1. do it\n"}, turn)

    assert not (workspace / "main.py").exists()
    assert result["created"] is True
    assert plan.read_text() == "1. do it\n"


async def test_no_workspace_is_explained() -> None:
    with pytest.raises(ToolError, match="this chat has no workspace; create one first"):
        await write_file({"path": "a.txt", "content": ""}, FakeTurn(workspace_dir=None))


async def test_content_is_required(turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="'content' is required"):
        await write_file({"path": "a.txt"}, turn)
