"""Confining file tools to the chat's workspace.

Every file tool turns the model's path into a real path through ``resolve_path``:
symlinks are followed before the check, so neither ``..``, an absolute path, nor a
link (to a file or a parent directory) can reach outside the workspace's real root.
The file tools then open that resolved path, never the one the model gave.
"""

from __future__ import annotations

import os
from pathlib import Path

from daemon.tool_registry import ToolError
from daemon.tools.turn_context import ToolTurn


def workspace_root(turn: ToolTurn) -> Path:
    """The workspace's real directory; the model is told when there is none."""
    if turn.workspace_dir is None:
        raise ToolError("this chat has no workspace; create one first")
    root = Path(os.path.realpath(turn.workspace_dir))
    if not root.is_dir():
        raise ToolError(f"the chat's workspace directory {root} does not exist")
    return root


def resolve_path(turn: ToolTurn, raw: str) -> Path:
    """The real path ``raw`` names, relative to the workspace root unless absolute."""
    root = workspace_root(turn)
    if not raw.strip():
        raise ToolError("path must not be empty")
    if "\0" in raw:
        raise ToolError("path must not contain NUL characters")
    real = Path(os.path.realpath(root / raw))
    if not real.is_relative_to(root):
        raise ToolError(
            f"path escapes the workspace: {raw!r} resolves to {real}, outside the "
            f"workspace {root}; use a path inside the workspace"
        )
    return real


def resolve_writable(turn: ToolTurn, raw: str) -> Path:
    """Like ``resolve_path``, but in plan mode only the chat's plan file qualifies."""
    real = resolve_path(turn, raw)
    if not turn.plan_mode:
        return real
    if turn.plan_path is None:
        raise ToolError(
            f"plan mode allows writing only the chat's plan file, and this chat has none; "
            f"{raw!r} was not changed"
        )
    plan = Path(os.path.realpath(workspace_root(turn) / turn.plan_path))
    if real != plan:
        raise ToolError(
            f"plan mode allows writing only the plan file {turn.plan_path}; {raw!r} was not "
            f"changed. Put your proposed changes in the plan instead"
        )
    return real


def display_path(turn: ToolTurn, real: Path) -> str:
    """``real`` as the model should name it: relative to the workspace root."""
    relative = real.relative_to(workspace_root(turn))
    return relative.as_posix()


def require_regular_file(real: Path, shown: str) -> None:
    """Refuses directories, devices and FIFOs, which would fail or block a read."""
    if not real.exists():
        raise ToolError(f"{shown} does not exist")
    if real.is_dir():
        raise ToolError(f"{shown} is a directory, not a file")
    if not real.is_file():
        raise ToolError(f"{shown} is not a regular file")
