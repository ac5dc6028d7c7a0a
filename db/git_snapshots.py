"""A repository as the git watcher last saw it, and its stored JSON form.

The daemon produces these (scans), the snapshot row stores them, GraphQL
serves them: one type and one (de)serialisation for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
