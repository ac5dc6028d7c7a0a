"""The GitHub provider against a fake GitHub served over real HTTP: what it
asks for (query, auth, API version), how it reads the answers, and that every
failure is a GitProviderError."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from daemon.git_providers import GitHubProvider, GitProviderError, PullRequest
from daemon.git_providers.github import parse_origin
from db.vocabulary import PullRequestState

TOKEN = "ghp_test0123456789"
ORIGIN = "git@github.com:acme/widgets.git"
DIFF = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"


def review(login: str, state: str) -> dict[str, Any]:
    return {"user": {"login": login}, "state": state}


def details(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "html_url": f"https://github.com/acme/widgets/pull/{number}",
        "number": number,
        "state": "open",
        "draft": False,
        "merged": False,
        "title": "Make widgets spin",
        "base": {"ref": "main"},
        "head": {"ref": "spin"},
        "user": {"login": "octocat"},
        "commits": 3,
        "additions": 10,
        "deletions": 4,
        "changed_files": 2,
        **extra,
    }


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeGitHub:
    """Pull requests of acme/widgets by head branch; every request is recorded."""

    pulls: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    status: int | None = None  # answer everything with this status instead
    stall_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/repos/{o}/{r}/pulls", self._list),
                Route("/repos/{o}/{r}/pulls/{n:int}", self._one),
                Route("/repos/{o}/{r}/pulls/{n:int}/reviews", self._reviews),
            ]
        )

    async def _record(self, request: Request) -> Response | None:
        self.seen.append(Seen(request.url.path, dict(request.query_params), dict(request.headers)))
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        if self.status is not None:
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"}
            return JSONResponse({"message": "nope"}, status_code=self.status, headers=headers)
        return None

    async def _list(self, request: Request) -> Response:
        if failure := await self._record(request):
            return failure
        branch = request.query_params["head"].split(":", 1)[1]
        pr = self.pulls.get(branch)
        return JSONResponse([{"number": pr["number"]}] if pr else [])

    async def _one(self, request: Request) -> Response:
        if failure := await self._record(request):
            return failure
        number = request.path_params["n"]
        if request.headers.get("accept") == "application/vnd.github.v3.diff":
            return PlainTextResponse(DIFF)
        for pr in self.pulls.values():
            if pr["number"] == number:
                return JSONResponse(pr)
        return JSONResponse({"message": "Not Found"}, status_code=404)

    async def _reviews(self, request: Request) -> Response:
        if failure := await self._record(request):
            return failure
        everything = self.reviews.get(request.path_params["n"], [])
        page = int(request.query_params.get("page", "1"))
        headers = {}
        if page * 2 < len(everything):  # two a page, to exercise the Link header
            headers["link"] = f'<{self.url}{request.url.path}?page={page + 1}>; rel="next"'
        return JSONResponse(everything[(page - 1) * 2 : page * 2], headers=headers)


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
def github(served: FakeGitHub) -> FakeGitHub:
    served.pulls.clear()
    served.reviews.clear()
    served.seen.clear()
    served.status, served.stall_s = None, 0.0
    return served


@pytest.fixture
async def provider(github: FakeGitHub) -> AsyncIterator[GitHubProvider]:
    client = GitHubProvider(TOKEN, api_url=github.url + "/")
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    ("origin", "parsed"),
    [
        ("git@github.com:acme/widgets.git", ("github.com", "acme", "widgets")),
        ("https://github.com/acme/widgets", ("github.com", "acme", "widgets")),
        ("https://github.com/acme/widgets.git/", ("github.com", "acme", "widgets")),
        ("https://x-access-token:t@github.com/acme/widgets.git", ("github.com", "acme", "widgets")),
        ("ssh://git@github.com/acme/widgets", ("github.com", "acme", "widgets")),
        ("ssh://git@GitHub.com:22/acme/widgets.git", ("github.com", "acme", "widgets")),
        ("git@gitlab.com:acme/widgets.git", ("gitlab.com", "acme", "widgets")),
        ("/srv/git/widgets.git", None),
        ("https://github.com/acme", None),
        ("https://github.com/acme/widgets/pulls", None),
    ],
)
def test_origins_in_every_spelling(origin: str, parsed: tuple[str, str, str] | None) -> None:
    assert parse_origin(origin) == parsed
    assert GitHubProvider(None).handles(origin) == (
        parsed is not None and parsed[0] == "github.com"
    )


async def test_finds_the_branch_pull_request_with_reviews(
    github: FakeGitHub, provider: GitHubProvider
) -> None:
    github.pulls["spin"] = details(7)
    github.reviews[7] = [
        review("ann", "COMMENTED"),
        review("ann", "APPROVED"),
        review("bob", "CHANGES_REQUESTED"),
        review("bob", "APPROVED"),
        review("bob", "COMMENTED"),  # a comment is not a verdict: bob still approves
        review("cy", "COMMENTED"),
        review("dee", "PENDING"),  # not submitted: not a reviewer yet
    ]
    pr = await provider.find_pull_request(ORIGIN, "spin")
    assert pr == PullRequest(
        url="https://github.com/acme/widgets/pull/7",
        number=7,
        state=PullRequestState.OPEN,
        title="Make widgets spin",
        base_branch="main",
        head_branch="spin",
        author_login="octocat",
        commits=3,
        approved=True,
        reviewer_count=3,
        changes_requested=False,
        additions=10,
        deletions=4,
        changed_files=2,
    )
    listing, one, *reviews = github.seen
    assert listing.path == "/repos/acme/widgets/pulls"
    assert listing.query["head"] == "acme:spin"
    assert listing.query["state"] == "all"
    assert (listing.query["sort"], listing.query["direction"]) == ("created", "desc")
    assert one.path == "/repos/acme/widgets/pulls/7"
    assert len(reviews) == 4  # seven reviews, two a page
    for seen in github.seen:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["x-github-api-version"] == "2022-11-28"


async def test_a_standing_change_request_blocks_approval(
    github: FakeGitHub, provider: GitHubProvider
) -> None:
    github.pulls["spin"] = details(8)
    github.reviews[8] = [
        review("ann", "APPROVED"),
        review("bob", "APPROVED"),
        review("bob", "CHANGES_REQUESTED"),
    ]
    pr = await provider.find_pull_request(ORIGIN, "spin")
    assert pr is not None
    assert (pr.approved, pr.changes_requested, pr.reviewer_count) == (False, True, 2)


@pytest.mark.parametrize(
    ("extra", "state"),
    [
        ({"draft": True}, PullRequestState.DRAFT),
        ({"state": "closed"}, PullRequestState.CLOSED),
        ({"state": "closed", "merged": True}, PullRequestState.MERGED),
    ],
)
async def test_states(github: FakeGitHub, provider: GitHubProvider, extra, state) -> None:
    github.pulls["spin"] = details(9, **extra)
    pr = await provider.find_pull_request("https://github.com/acme/widgets", "spin")
    assert pr is not None
    assert pr.state == state
    assert (pr.approved, pr.reviewer_count) == (False, 0)


async def test_no_pull_request_and_no_token(github: FakeGitHub) -> None:
    anonymous = GitHubProvider(None, api_url=github.url)
    try:
        assert await anonymous.find_pull_request(ORIGIN, "feature/x") is None
    finally:
        await anonymous.aclose()
    (seen,) = github.seen
    assert seen.query["head"] == "acme:feature/x"
    assert "authorization" not in seen.headers


async def test_diff_is_fetched_as_text(github: FakeGitHub, provider: GitHubProvider) -> None:
    assert await provider.pull_request_diff(ORIGIN, 7) == DIFF
    (seen,) = github.seen
    assert seen.path == "/repos/acme/widgets/pulls/7"
    assert seen.headers["accept"] == "application/vnd.github.v3.diff"


@pytest.mark.parametrize(
    ("status", "message"), [(404, "HTTP 404: nope"), (403, "HTTP 403: rate limited")]
)
async def test_http_errors(github: FakeGitHub, provider: GitHubProvider, status, message) -> None:
    github.status = status
    with pytest.raises(GitProviderError, match=message):
        await provider.find_pull_request(ORIGIN, "spin")


async def test_timeouts_unreachable_hosts_and_foreign_origins(github: FakeGitHub) -> None:
    github.stall_s = 1.0
    async with httpx.AsyncClient(timeout=0.1) as client:
        impatient = GitHubProvider(TOKEN, api_url=github.url, client=client)
        with pytest.raises(GitProviderError, match="Timeout"):
            await impatient.pull_request_diff(ORIGIN, 1)
        await impatient.aclose()  # not its client: stays open
        assert not client.is_closed
    nowhere = GitHubProvider(TOKEN, api_url="http://127.0.0.1:1")
    with pytest.raises(GitProviderError, match="ConnectError"):
        await nowhere.find_pull_request(ORIGIN, "spin")
    with pytest.raises(GitProviderError, match="not a GitHub remote"):
        await nowhere.find_pull_request("git@gitlab.com:acme/widgets.git", "spin")
    await nowhere.aclose()
