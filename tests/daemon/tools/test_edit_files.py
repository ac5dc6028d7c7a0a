"""edit_files: exact search/replace across files, all or nothing per call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.tool_registry import ToolError
from daemon.tools.edit_files import TOOL
from tests.daemon.tools.workspace_turn import FakeTurn

edit_files = TOOL.run


def edit(path: str, *pairs: tuple[str, str], replace_all: bool = False) -> dict[str, Any]:
    edits = [{"search": s, "replace": r, "replaceAll": replace_all} for s, r in pairs]
    return {"path": path, "edits": edits}


async def test_edits_several_files(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.py").write_text("x = 1\ny = 2\n")
    (workspace / "b.py").write_text("print('hi')\n")

    result = await edit_files(
        {"files": [edit("a.py", ("x = 1", "x = 10")), edit("b.py", ("'hi'", "'bye'"))]}, turn
    )

    assert result == {
        "files": [{"path": "a.py", "replacements": 1}, {"path": "b.py", "replacements": 1}],
        "totalReplacements": 2,
    }
    assert (workspace / "a.py").read_text() == "x = 10\ny = 2\n"
    assert (workspace / "b.py").read_text() == "print('bye')\n"


async def test_edits_to_one_file_apply_in_order(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.txt").write_text("alpha\n")
    await edit_files({"files": [edit("a.txt", ("alpha", "beta"), ("beta", "gamma"))]}, turn)
    assert (workspace / "a.txt").read_text() == "gamma\n"


async def test_replace_all_counts_every_match(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.txt").write_text("foo foo\nfoo\n")

    result = await edit_files({"files": [edit("a.txt", ("foo", "bar"), replace_all=True)]}, turn)

    assert result["files"] == [{"path": "a.txt", "replacements": 3}]
    assert (workspace / "a.txt").read_text() == "bar bar\nbar\n"


async def test_ambiguous_search_is_refused(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.txt").write_text("foo foo\n")
    with pytest.raises(ToolError, match="matches 2 times; nothing was written"):
        await edit_files({"files": [edit("a.txt", ("foo", "bar"))]}, turn)
    assert (workspace / "a.txt").read_text() == "foo foo\n"


async def test_a_failed_edit_leaves_every_file_untouched(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.py").write_text("x = 1\n")
    (workspace / "b.py").write_text("y = 2\n")

    with pytest.raises(ToolError, match=r"files\[1\]\.edits\[0\] \(b\.py\): search text not found"):
        await edit_files(
            {"files": [edit("a.py", ("x = 1", "x = 10")), edit("b.py", ("z = 3", "z = 4"))]},
            turn,
        )

    assert (workspace / "a.py").read_text() == "x = 1\n"
    assert (workspace / "b.py").read_text() == "y = 2\n"


async def test_search_must_match_exactly(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.py").write_text("def f():\n    return 1\n")
    with pytest.raises(ToolError, match="search text not found"):
        await edit_files({"files": [edit("a.py", ("def f():\n  return 1", "x"))]}, turn)


async def test_missing_file_is_an_error(workspace: Path, turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match=r"nope\.py does not exist"):
        await edit_files({"files": [edit("nope.py", ("a", "b"))]}, turn)


async def test_escaping_paths_are_refused(workspace: Path, outside: Path, turn: FakeTurn) -> None:
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolError, match="path escapes the workspace"):
        await edit_files({"files": [edit("link.txt", ("top", "no"))]}, turn)
    assert (outside / "secret.txt").read_text() == "top secret\n"


async def test_plan_mode_edits_only_the_plan_file(workspace: Path) -> None:
    plan = workspace / "plan.md"
    plan.write_text("- step one\n")
    (workspace / "main.py").write_text("pass\n")
    turn = FakeTurn(workspace_dir=workspace, plan_mode=True, plan_path=str(plan))

    with pytest.raises(ToolError, match="plan mode allows writing only the plan file"):
        await edit_files({"files": [edit("main.py", ("pass", "print(1)"))]}, turn)
    await edit_files({"files": [edit("plan.md", ("one", "1"))]}, turn)

    assert (workspace / "main.py").read_text() == "pass\n"
    assert plan.read_text() == "- step 1\n"


async def test_malformed_calls_are_explained(turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="argument 'files' must hold 1 to 100 items, not 0"):
        await edit_files({"files": []}, turn)
    with pytest.raises(ToolError, match=r"'files\[0\]\.edits\[0\]\.search' must not be empty"):
        await edit_files({"files": [{"path": "a", "edits": [{"search": "", "replace": ""}]}]}, turn)
