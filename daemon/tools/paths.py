"""Confining file tools to the chat's workspace.

Every file tool turns the model's path into a real path through ``resolve_path``:
symlinks are followed before the check, so neither ``..``, an absolute path, nor a
link (to a file or a parent directory) can reach outside the workspace's real root.
The file tools then open that resolved path, never the one the model gave.

Between that check and the open, a sandboxed command running in the background
may swap a directory of the path for a link to the host; ``open_resolved``
therefore walks the resolved path one component at a time without following
any link, so a swapped path is refused instead of followed out of the workspace.

The model knows the workspace as ``WORKSPACE_MOUNT`` (where its commands see it
in the sandbox), so absolute paths under it name workspace files, and no message
names a host path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
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
    """Like ``resolve_path``, but never inside a ``.git`` directory, and in plan mode
    only the chat's plan file qualifies.

    Git's own files hold commands the server's git would run (filters, fsmonitor):
    the file tools leave them to git, run through execute in the sandbox.
    """
    real = resolve_path(turn, raw)
    root = workspace_root(turn)
    if ".git" in real.relative_to(root).parts:
        raise ToolError(
            f"{raw!r} is inside a .git directory, which the file tools don't write; "
            "change the repository with git commands through execute instead"
        )
    if not turn.plan_mode:
        return real
    if turn.plan_path is None:
        raise ToolError(
            f"plan mode allows writing only the chat's plan file, and this chat has none; "
            f"{raw!r} was not changed"
        )
    plan = Path(os.path.realpath(_on_host(root, turn.plan_path)))
    if real != plan:
        shown = f"{WORKSPACE_MOUNT}/{plan.relative_to(root).as_posix()}"
        raise ToolError(
            f"plan mode allows writing only the plan file {shown}; {raw!r} was not "
            f"changed. Put your proposed changes in the plan instead"
        )
    return real


def display_path(turn: ToolTurn, real: Path) -> str:
    """``real`` as the model should name it: relative to the workspace root."""
    relative = real.relative_to(workspace_root(turn))
    return relative.as_posix()


def open_resolved(real: Path, shown: str, flags: int, *, make_parents: bool = False) -> int:
    """A descriptor for ``real`` (from ``resolve_path``), opened through no link.

    ``real`` contains no links, so any met on the way were planted after the
    check. Reads get only regular files (``O_NONBLOCK`` keeps a FIFO from
    blocking the open); ``make_parents`` creates missing directories, also
    without following links.
    """
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in real.parts[1:-1]:
            if make_parents:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                inner = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            except (NotADirectoryError, FileNotFoundError) as exc:
                what = "is missing" if isinstance(exc, FileNotFoundError) else "is not a directory"
                raise ToolError(f"a parent directory of {shown} {what}") from None
            os.close(fd)
            fd = inner
        try:
            opened = os.open(real.name, flags | _FILE_FLAGS, 0o666, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ToolError(f"{shown} changed into a link; links are not followed") from None
            raise
    finally:
        os.close(fd)
    if flags & os.O_ACCMODE == os.O_RDONLY and not stat.S_ISREG(os.fstat(opened).st_mode):
        os.close(opened)
        raise ToolError(f"{shown} is not a regular file")
    return opened


def read_resolved(real: Path, shown: str, max_bytes: int | None = None) -> bytes:
    """``real``'s content via ``open_resolved``; a ``ToolError`` past ``max_bytes``."""
    with os.fdopen(open_resolved(real, shown, os.O_RDONLY), "rb") as file:
        data = file.read() if max_bytes is None else file.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise ToolError(f"{shown} is larger than {max_bytes} bytes")
    return data


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def require_regular_file(real: Path, shown: str) -> None:
    """Refuses directories, devices and FIFOs, which would fail or block a read."""
    if not real.exists():
        raise ToolError(f"{shown} does not exist")
    if real.is_dir():
        raise ToolError(f"{shown} is a directory, not a file")
    if not real.is_file():
        raise ToolError(f"{shown} is not a regular file")
