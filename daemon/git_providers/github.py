"""GitHub over its REST API: the pull request for a branch, its reviews and diff.

A branch's pull request is the newest one whose head is ``owner:branch`` in the
origin repository, in any state, so a merged or closed PR still shows. Every
failure (network, status, shape) is a ``GitProviderError``: the caller retries
later rather than concluding there is no pull request.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from daemon.git_providers.base import GitProviderError, PullRequest
from db.vocabulary import PullRequestState

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
GITHUB_HOSTS = frozenset({"github.com", "www.github.com"})
# Reviews come 100 a page; a PR with more than this many pages is not worth more calls.
REVIEW_PAGES_MAX = 5

# git@github.com:o/r.git | ssh://git@github.com[:22]/o/r | https://[user@]github.com/o/r[.git]
_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")
_URL = re.compile(r"^(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[^:/]+)(?::\d+)?/(?P<path>.+)$")
# Of a reviewer's reviews, the latest of these is their verdict; comments are not one.
_VERDICTS = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


def parse_origin(remote_origin: str) -> tuple[str, str, str] | None:
    """``(host, owner, repo)`` of a remote URL in any of git's spellings, or None."""
    origin = remote_origin.strip()
    match = _URL.match(origin) or (None if "://" in origin else _SCP.match(origin))
    if match is None:
        return None
    parts = [p for p in match["path"].split("/") if p]
    if len(parts) != 2:
        return None
    owner, repo = parts[0], parts[1].removesuffix(".git")
    if not owner or not repo:
        return None
    return match["host"].lower(), owner, repo


class GitHubProvider:
    def __init__(
        self,
        token: str | None,
        api_url: str = API_URL,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT)
        self._headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "agentgql",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def handles(self, remote_origin: str) -> bool:
        parsed = parse_origin(remote_origin)
        return parsed is not None and parsed[0] in GITHUB_HOSTS

    async def find_pull_request(self, remote_origin: str, branch: str) -> PullRequest | None:
        owner, repo = self._repo(remote_origin)
        listing = await self._get_json(
            f"/repos/{owner}/{repo}/pulls",
            params={
                "head": f"{owner}:{branch}",
                "state": "all",
                "sort": "created",
                "direction": "desc",
                "per_page": "1",
            },
        )
        if not isinstance(listing, list):
            raise GitProviderError("GitHub: the pull request list is not a list")
        if not listing:
            return None
        number = _field(listing[0], "number", int)
        details = await self._get_json(f"/repos/{owner}/{repo}/pulls/{number}")
        reviews = await self._reviews(owner, repo, number)
        return _pull_request(details, reviews)

    async def pull_request_diff(self, remote_origin: str, number: int) -> str:
        owner, repo = self._repo(remote_origin)
        response = await self._get(
            f"/repos/{owner}/{repo}/pulls/{number}",
            accept="application/vnd.github.v3.diff",
        )
        return response.text

    # -- HTTP ------------------------------------------------------------------------

    def _repo(self, remote_origin: str) -> tuple[str, str]:
        parsed = parse_origin(remote_origin)
        if parsed is None or parsed[0] not in GITHUB_HOSTS:
            raise GitProviderError(f"not a GitHub remote: {remote_origin!r}")
        return parsed[1], parsed[2]

    async def _reviews(self, owner: str, repo: str, number: int) -> list[Any]:
        url: str | None = f"{self.api_url}/repos/{owner}/{repo}/pulls/{number}/reviews"
        params: dict[str, str] | None = {"per_page": "100"}
        reviews: list[Any] = []
        for _ in range(REVIEW_PAGES_MAX):
            if url is None:
                break
            response = await self._get(url, params=params)
            page = _json(response)
            if not isinstance(page, list):
                raise GitProviderError("GitHub: the review list is not a list")
            reviews.extend(page)
            url, params = response.links.get("next", {}).get("url"), None
        return reviews

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        return _json(await self._get(path, params=params))

    async def _get(
        self, path_or_url: str, *, params: dict[str, str] | None = None, accept: str | None = None
    ) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else f"{self.api_url}{path_or_url}"
        headers = dict(self._headers)
        if accept:
            headers["Accept"] = accept
        try:
            response = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise GitProviderError(f"GitHub: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return response
        raise GitProviderError(_failure(response))


def _failure(response: httpx.Response) -> str:
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message") or "")
    except ValueError:
        message = response.text[:200]
    if response.status_code in {403, 429} and response.headers.get("x-ratelimit-remaining") == "0":
        message = f"rate limited until {response.headers.get('x-ratelimit-reset', '?')}"
    return f"GitHub: HTTP {response.status_code}" + (f": {message}" if message else "")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise GitProviderError("GitHub: the reply is not JSON") from exc


def _field(body: Any, name: str, kind: type[Any]) -> Any:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise GitProviderError(f"GitHub: the reply has no valid {name!r}")
    return value


def _state(details: dict[str, Any]) -> PullRequestState:
    if details.get("merged") or details.get("merged_at"):
        return PullRequestState.MERGED
    if details.get("state") == "closed":
        return PullRequestState.CLOSED
    return PullRequestState.DRAFT if details.get("draft") else PullRequestState.OPEN


def _pull_request(details: Any, reviews: list[Any]) -> PullRequest:
    if not isinstance(details, dict):
        raise GitProviderError("GitHub: the pull request is not an object")
    verdicts: dict[str, str] = {}
    reviewers: set[str] = set()
    # GitHub lists reviews oldest first, so later verdicts replace earlier ones.
    for review in reviews:
        login = ((review.get("user") or {}).get("login")) if isinstance(review, dict) else None
        state = review.get("state") if isinstance(review, dict) else None
        if not login or not isinstance(state, str) or state == "PENDING":
            continue
        reviewers.add(login)
        if state in _VERDICTS:
            verdicts[login] = state
    final = set(verdicts.values())
    changes_requested = "CHANGES_REQUESTED" in final
    return PullRequest(
        url=_field(details, "html_url", str),
        number=_field(details, "number", int),
        state=_state(details),
        title=_field(details, "title", str),
        base_branch=_field(details.get("base"), "ref", str),
        head_branch=_field(details.get("head"), "ref", str),
        author_login=(details.get("user") or {}).get("login"),
        commits=_field(details, "commits", int),
        approved="APPROVED" in final and not changes_requested,
        reviewer_count=len(reviewers),
        changes_requested=changes_requested,
        additions=_field(details, "additions", int),
        deletions=_field(details, "deletions", int),
        changed_files=_field(details, "changed_files", int),
    )
