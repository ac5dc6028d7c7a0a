"""A repository as the git watcher last saw it, and its stored JSON form.

The daemon produces these (scans), the snapshot row stores them, GraphQL
serves them: one type and one (de)serialisation for all three.

A repository's ``root`` is the path its owner's commands see, under
``WORKSPACE_MOUNT`` (``/workspace/app``), never the host directory the server
keeps the workspace in: ``sandbox_root`` is the one place a scanned host path
becomes a root, and ``is_sandbox_root`` lets readers refuse anything else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from db.vocabulary import WORKSPACE_MOUNT


def sandbox_root(workspace: Path, host_path: str | Path) -> str:
    """``host_path`` as seen inside the sandbox: the workspace directory is
    ``WORKSPACE_MOUNT``. Symlinks are resolved on both sides first; a path
    outside the workspace raises ValueError (it must not be shown at all)."""
    base = Path(os.path.realpath(workspace))
    relative = Path(os.path.realpath(host_path)).relative_to(base)
    if relative == Path("."):
        return WORKSPACE_MOUNT
    return f"{WORKSPACE_MOUNT}/{relative.as_posix()}"


def host_path(workspace: Path, root: str) -> Path:
    """Where on this machine the in-sandbox ``root`` lives (the inverse of
    ``sandbox_root`` for roots it produced)."""
    if not is_sandbox_root(root):
        raise ValueError(f"{root!r} is not under {WORKSPACE_MOUNT}")
    return workspace / root[len(WORKSPACE_MOUNT) :].lstrip("/")


def is_sandbox_root(root: str) -> bool:
    """Whether ``root`` is an in-sandbox path (rows written before roots were
    mapped hold host paths; those are never served)."""
    return root == WORKSPACE_MOUNT or root.startswith(WORKSPACE_MOUNT + "/")


@dataclass(frozen=True)
class RepoSnapshot:
    root: str
    branch: str | None
    remote_origin: str | None
    unified_diff: str
    removed: bool
    additions: int
    deletions: int
    changed_files: int

    @classmethod
    def gone(cls, root: str) -> RepoSnapshot:
        """A repository that disappeared: announced once, with nothing in it."""
        return cls(root, None, None, "", True, 0, 0, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "branch": self.branch,
            "remoteOrigin": self.remote_origin,
            "unifiedDiff": self.unified_diff,
            "removed": self.removed,
            "additions": self.additions,
            "deletions": self.deletions,
            "changedFiles": self.changed_files,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RepoSnapshot:
        """One stored repository; fields a writer left out read as empty."""
        branch = raw.get("branch")
        origin = raw.get("remoteOrigin")
        return cls(
            root=str(raw["root"]),
            branch=None if branch is None else str(branch),
            remote_origin=None if origin is None else str(origin),
            unified_diff=str(raw.get("unifiedDiff") or ""),
            removed=bool(raw.get("removed", False)),
            additions=_int(raw.get("additions")),
            deletions=_int(raw.get("deletions")),
            changed_files=_int(raw.get("changedFiles")),
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
