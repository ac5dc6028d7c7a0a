"""Confining file tools to the chat's workspace.

Every file tool turns the model's path into a real path through ``resolve_path``:
symlinks are followed before the check, so neither ``..``, an absolute path, nor a
link (to a file or a parent directory) can reach outside the workspace's real root.
The file tools then open that resolved path, never the one the model gave.

The model knows the workspace as ``WORKSPACE_MOUNT`` (where its commands see it
in the sandbox), so absolute paths under it name workspace files, and no message
names a host path.
"""

from __future__ import annotations

import os
from pathlib import Path

from daemon.tool_registry import ToolError
from daemon.tools.turn_context import ToolTurn
from db.vocabulary import WORKSPACE_MOUNT


def workspace_root(turn: ToolTurn) -> Path:
    """The workspace's real directory; the model is told when there is none."""
    if turn.workspace_dir is None:
        raise ToolError("this chat has no workspace; create one first")
    root = Path(os.path.realpath(turn.workspace_dir))
    if not root.is_dir():
        raise ToolError("the chat's workspace directory is missing; create a new workspace")
    return root


def _on_host(root: Path, raw: str) -> Path:
    """``raw`` as a host path: relative to ``root``, and ``/workspace/...`` mapped to it.

    Other absolute paths stay as they are (the check after resolving refuses them
    unless they lie inside the root).
    """
    if raw == WORKSPACE_MOUNT or raw.startswith(WORKSPACE_MOUNT + "/"):
        return root / raw[len(WORKSPACE_MOUNT) :].lstrip("/")
    return root / raw


def resolve_path(turn: ToolTurn, raw: str) -> Path:
    """The real path ``raw`` names, relative to the workspace root unless absolute."""
    root = workspace_root(turn)
    if not raw.strip():
        raise ToolError("path must not be empty")
    if "\0" in raw:
        raise ToolError("path must not contain NUL characters")
    real = Path(os.path.realpath(_on_host(root, raw)))
    if not real.is_relative_to(root):
        raise ToolError(
            f"path escapes the workspace: {raw!r} resolves outside the workspace "
            f"{WORKSPACE_MOUNT}; use a relative path or one under {WORKSPACE_MOUNT}"
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
    plan = Path(os.path.realpath(_on_host(workspace_root(turn), turn.plan_path)))
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
