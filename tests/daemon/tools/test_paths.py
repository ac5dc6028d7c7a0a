"""Confinement: every path a tool touches stays inside the workspace's real root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.tool_registry import ToolError
from daemon.tools.paths import display_path, resolve_path, resolve_writable
from tests.daemon.tools.workspace_turn import FakeTurn


def test_relative_and_absolute_paths_inside_resolve(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "src").mkdir()
    (workspace / "src" / "a.py").write_text("x = 1\n")

    relative = resolve_path(turn, "src/a.py")
    absolute = resolve_path(turn, str(workspace / "src" / "a.py"))

    assert relative == absolute == Path(os.path.realpath(workspace / "src" / "a.py"))
    assert display_path(turn, relative) == "src/a.py"


def test_not_yet_existing_paths_resolve_for_creation(workspace: Path, turn: FakeTurn) -> None:
    real = resolve_path(turn, "new/dir/file.txt")
    assert display_path(turn, real) == "new/dir/file.txt"


@pytest.mark.parametrize("raw", ["../x", "src/../../x", "/etc/passwd", "/"])
def test_paths_outside_are_refused(turn: FakeTurn, raw: str) -> None:
    with pytest.raises(ToolError, match="path escapes the workspace"):
        resolve_path(turn, raw)


def test_dotdot_that_stays_inside_is_fine(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a").mkdir()
    assert display_path(turn, resolve_path(turn, "a/../b.txt")) == "b.txt"


def test_symlinked_file_pointing_outside_is_refused(
    workspace: Path, outside: Path, turn: FakeTurn
) -> None:
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolError, match="path escapes the workspace"):
        resolve_path(turn, "link.txt")


def test_symlinked_directory_pointing_outside_is_refused(
    workspace: Path, outside: Path, turn: FakeTurn
) -> None:
    (workspace / "linkdir").symlink_to(outside)
    with pytest.raises(ToolError, match="path escapes the workspace"):
        resolve_path(turn, "linkdir/secret.txt")
    with pytest.raises(ToolError, match="path escapes the workspace"):
        resolve_path(turn, "linkdir/not-there-yet.txt")


def test_symlink_within_the_workspace_is_followed(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "real.txt").write_text("hi\n")
    (workspace / "alias.txt").symlink_to("real.txt")
    assert display_path(turn, resolve_path(turn, "alias.txt")) == "real.txt"


def test_workspace_reached_through_a_symlink_still_confines(
    tmp_path: Path, workspace: Path, outside: Path
) -> None:
    linked_root = tmp_path / "linked-root"
    linked_root.symlink_to(workspace)
    turn = FakeTurn(workspace_dir=linked_root)

    assert display_path(turn, resolve_path(turn, str(linked_root / "a.txt"))) == "a.txt"
    with pytest.raises(ToolError, match="path escapes the workspace"):
        resolve_path(turn, str(outside / "secret.txt"))


def test_no_workspace_tells_the_model_to_create_one() -> None:
    with pytest.raises(ToolError, match="this chat has no workspace; create one first"):
        resolve_path(FakeTurn(workspace_dir=None), "a.txt")


def test_empty_path_is_refused(turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="must not be empty"):
        resolve_path(turn, " ")


def test_plan_mode_allows_only_the_plan_file(workspace: Path) -> None:
    plan = workspace / ".plans" / "plan.md"
    turn = FakeTurn(workspace_dir=workspace, plan_mode=True, plan_path=str(plan))

    assert resolve_writable(turn, ".plans/plan.md") == Path(os.path.realpath(plan))
    with pytest.raises(ToolError, match="plan mode allows writing only the plan file"):
        resolve_writable(turn, "src/main.py")


def test_plan_mode_without_a_plan_file_refuses_every_write(workspace: Path) -> None:
    turn = FakeTurn(workspace_dir=workspace, plan_mode=True, plan_path=None)
    with pytest.raises(ToolError, match="plan mode allows writing only the chat's plan file"):
        resolve_writable(turn, "notes.md")


def test_paths_under_the_sandbox_mount_name_workspace_files(
    workspace: Path, turn: FakeTurn
) -> None:
    (workspace / "src").mkdir()
    real = resolve_path(turn, "/workspace/src/a.py")
    assert real == Path(os.path.realpath(workspace / "src" / "a.py"))
    assert resolve_path(turn, "/workspace") == Path(os.path.realpath(workspace))
    with pytest.raises(ToolError, match="path escapes the workspace"):
        resolve_path(turn, "/workspace/../secret.key")


@pytest.mark.parametrize("raw", ["../../secret.key", "/etc/passwd", "/workspace/../x"])
def test_refusals_never_name_host_paths(workspace: Path, turn: FakeTurn, raw: str) -> None:
    with pytest.raises(ToolError) as refused:
        resolve_path(turn, raw)
    message = str(refused.value)
    assert str(workspace) not in message
    assert str(workspace.parent) not in message
    assert "outside the workspace /workspace" in message


def test_a_missing_workspace_directory_is_not_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    with pytest.raises(ToolError, match="workspace directory is missing") as refused:
        resolve_path(FakeTurn(workspace_dir=gone), "a.txt")
    assert str(tmp_path) not in str(refused.value)


def test_plan_mode_accepts_the_plan_file_under_the_sandbox_mount(workspace: Path) -> None:
    turn = FakeTurn(workspace_dir=workspace, plan_mode=True, plan_path="/workspace/.plans/plan.md")
    assert resolve_writable(turn, "/workspace/.plans/plan.md") == Path(
        os.path.realpath(workspace / ".plans" / "plan.md")
    )
    with pytest.raises(ToolError, match="plan mode allows writing only the plan file"):
        resolve_writable(turn, "notes.md")


@pytest.mark.parametrize(
    "raw", [".git/config", "sub/.git/info/attributes", "/workspace/.git/hooks/pre-commit", ".git"]
)
def test_git_internals_are_not_written_by_file_tools(turn: FakeTurn, raw: str) -> None:
    with pytest.raises(ToolError, match=r"inside a \.git directory"):
        resolve_writable(turn, raw)
    assert resolve_path(turn, raw)  # reading them is fine


def test_plan_mode_names_the_plan_file_as_the_sandbox_sees_it(workspace: Path) -> None:
    plan = workspace / ".plans" / "plan.md"
    turn = FakeTurn(workspace_dir=workspace, plan_mode=True, plan_path=str(plan))
    with pytest.raises(ToolError) as refused:
        resolve_writable(turn, "notes.md")
    assert "the plan file /workspace/.plans/plan.md;" in str(refused.value)
    assert str(workspace) not in str(refused.value)
