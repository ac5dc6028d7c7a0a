"""What the diff-status worker needs from a git host, whichever host it is.

Only the pull request for a branch and its diff: enough to show a chat's PR
badge and serve its remote diff from the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from db.vocabulary import PullRequestState


class GitProviderError(Exception):
    """The host could not answer (network, auth, rate limit, unexpected reply).

    Callers retry later; it never means "there is no pull request"."""


@dataclass(frozen=True, slots=True)
class PullRequest:
    url: str
    number: int
    state: PullRequestState
    title: str
    base_branch: str
    head_branch: str
    author_login: str | None
    commits: int
    approved: bool
    reviewer_count: int
    changes_requested: bool
    additions: int
    deletions: int
    changed_files: int


class GitProvider(Protocol):
    def handles(self, remote_origin: str) -> bool:
        """Whether this provider hosts that remote (so the others need not be asked)."""
        ...

    async def find_pull_request(self, remote_origin: str, branch: str) -> PullRequest | None:
        """The newest pull request from ``branch``, in any state; None if there is none."""
        ...

    async def pull_request_diff(self, remote_origin: str, number: int) -> str: ...
