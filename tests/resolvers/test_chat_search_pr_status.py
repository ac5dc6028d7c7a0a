"""``pr_status:open|draft|merged|closed|none`` in the chat list's search string."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.models import Chat, ChatDiffStatus
from db.vocabulary import PullRequestState
from resolvers.chat_search import parse_chat_query
from resolvers.errors import ApiError
from tests.harness import GraphQLClient, Person, new_person

CHATS = "query($q: String) { chats(query: $q) { nodes { title } } }"


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("pr_status:open", [PullRequestState.OPEN]),
        ("pr_status:DRAFT", [PullRequestState.DRAFT]),
        ("PR_STATUS:Merged", [PullRequestState.MERGED]),
        ("pr_status:closed", [PullRequestState.CLOSED]),
        ("pr_status:none", [None]),
        ("pr_status:open pr_status:none", [PullRequestState.OPEN, None]),
    ],
)
def test_pr_status_values(query: str, wanted: list[PullRequestState | None]) -> None:
    assert parse_chat_query(query).pr_statuses == wanted


@pytest.mark.parametrize("query", ["pr_status:", "pr_status:approved", "pr_status:nil"])
def test_an_unknown_pr_status_is_refused_naming_the_choices(query: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_chat_query(query)
    error = caught.value
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "query"
    assert error.message.startswith("query: pr_status: unknown ")
    assert "open, draft, merged, closed, none" in error.message


@pytest.fixture(scope="module")
async def me(admin_token: str) -> Person:
    """One chat per pull-request state, one branch without a pull request, one
    chat without any branch; newest first: open, draft, merged, closed, branch, plain."""
    person = await new_person()
    start = datetime.now(UTC)
    states: list[tuple[str, PullRequestState | None, bool]] = [
        ("plain", None, False),
        ("branch", None, True),
        ("closed", PullRequestState.CLOSED, True),
        ("merged", PullRequestState.MERGED, True),
        ("draft", PullRequestState.DRAFT, True),
        ("open", PullRequestState.OPEN, True),
    ]
    for n, (title, state, has_row) in enumerate(states):
        chat_id = uuid.uuid4()
        await Chat.create(
            id=chat_id,
            owner_id=person.user.id,
            root_id=chat_id,
            title=title,
            updated_at=start + timedelta(seconds=n),
        )
        if has_row:
            await ChatDiffStatus.create(
                chat_id=chat_id,
                git_branch=title,
                pull_request_state=state,
                url=None if state is None else f"https://github.com/o/r/pull/{n}",
            )
    return person


async def _titles(gql: GraphQLClient, me: Person, query: str) -> list[str]:
    data = await gql.ok(CHATS, {"q": query}, token=me.token)
    return [node["title"] for node in data["chats"]["nodes"]]


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("pr_status:open", ["open"]),
        ("pr_status:draft", ["draft"]),
        ("pr_status:merged", ["merged"]),
        ("pr_status:closed", ["closed"]),
        ("pr_status:none", ["branch", "plain"]),
        ("pr_status:open pr_status:draft", ["open", "draft"]),
        ("pr_status:merged pr_status:none", ["merged", "branch", "plain"]),
        ("pr_status:none title:pla", ["plain"]),
        ("", ["open", "draft", "merged", "closed", "branch", "plain"]),
    ],
)
async def test_the_list_keeps_chats_in_the_wanted_states(
    gql: GraphQLClient, me: Person, query: str, titles: list[str]
) -> None:
    assert await _titles(gql, me, query) == titles


async def test_other_users_pull_requests_are_not_listed(
    gql: GraphQLClient, me: Person, admin_token: str
) -> None:
    other = await new_person()
    assert await _titles(gql, other, "pr_status:open") == []
    assert await _titles(gql, other, "pr_status:none") == []


async def test_an_unknown_pr_status_through_the_api(gql: GraphQLClient, me: Person) -> None:
    error = await gql.error(CHATS, {"q": "pr_status:approved"}, token=me.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "query"
