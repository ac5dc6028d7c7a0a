"""A background command racing a file tool: it swaps a directory of the checked
path for a link to the host between the confinement check and the open. The
tools must refuse rather than follow it (the key and other workspaces live there)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.tool_registry import ToolError
from daemon.tools import edit_files, paths, propose_plan, read_file, write_file
from tests.daemon.tools.workspace_turn import FakeTurn


@pytest.fixture
def racing(monkeypatch: pytest.MonkeyPatch, workspace: Path, outside: Path) -> Path:
    """``dir/`` in the workspace; once a tool has checked a path in it, ``dir`` becomes
    a link to ``outside`` (which holds secret.txt), as a racing command could make it."""
    (workspace / "dir").mkdir()
    (workspace / "dir" / "secret.txt").write_text("mine\n")

    def swapping(check: Callable[..., Path]) -> Callable[..., Path]:
        def checked(*args: Any) -> Path:
            real = check(*args)
            (workspace / "dir").rename(workspace / "was-dir")
            (workspace / "dir").symlink_to(outside)
            return real

        return checked

    for module in (read_file, propose_plan):
        monkeypatch.setattr(module, "resolve_path", swapping(paths.resolve_path))
    for module in (write_file, edit_files):
        monkeypatch.setattr(module, "resolve_writable", swapping(paths.resolve_writable))
    return outside


async def test_read_file_does_not_follow(racing: Path, turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="not a directory"):
        await read_file.TOOL.run({"path": "dir/secret.txt"}, turn)


async def test_write_file_does_not_follow(racing: Path, turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="not a directory"):
        await write_file.TOOL.run({"path": "dir/secret.txt", "content": "pwned\n"}, turn)
    assert (racing / "secret.txt").read_text() == "top secret\n"


async def test_edit_files_does_not_follow(racing: Path, turn: FakeTurn) -> None:
    edit = {"path": "dir/secret.txt", "edits": [{"search": "top", "replace": "no"}]}
    with pytest.raises(ToolError, match="not a directory"):
        await edit_files.TOOL.run({"files": [edit]}, turn)
    assert (racing / "secret.txt").read_text() == "top secret\n"


async def test_propose_plan_does_not_follow(racing: Path, workspace: Path, turn: FakeTurn) -> None:
    (workspace / "dir" / "plan.md").write_text("# mine\n")
    (racing / "plan.md").write_text("# the host's\n")
    with pytest.raises(ToolError, match="not a directory"):
        await propose_plan.TOOL.run({"path": str(workspace / "dir" / "plan.md")}, turn)
