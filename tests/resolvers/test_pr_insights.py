"""pullRequestInsights: pull requests opened, merged and closed in a window vs the
one before it, per day, per model, what their chats cost, and the newest ones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from db.models import Chat, ChatDiffStatus, CostChatDay, ModelConfig, Provider, User
from db.vocabulary import ProviderKind, PullRequestState
from resolvers import global_id
from resolvers.errors import ApiError
from resolvers.pr_insights import insight_window
from tests.harness import GraphQLClient, counted_queries

QUERY = """
query($from: DateTime, $to: DateTime, $first: Int) {
  pullRequestInsights(from: $from, to: $to) {
    from to opened merged closed previousOpened previousMerged costMicros
    byDay { day opened merged }
    byModel { model opened merged costMicros }
    recent(first: $first) { chat { id } url number title state authorLogin createdAt }
  }
}"""
FROM = datetime(2026, 3, 1, tzinfo=UTC)
TO = datetime(2026, 3, 8, tzinfo=UTC)  # a week; the previous one starts on Feb 22
WINDOW = {"from": FROM.isoformat(), "to": TO.isoformat()}


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class World:
    chats: dict[str, Chat]


async def _config(model: str) -> ModelConfig:
    provider = await Provider.get(kind=ProviderKind.SCRIPTED)
    return await ModelConfig.create(
        provider=provider, model=model, display_name=model, context_limit=1000, enabled=False
    )


async def _chat(
    owner: User,
    created: datetime,
    config: ModelConfig | None,
    state: PullRequestState | None,
    refreshed: datetime | None = None,
    *,
    number: int = 1,
) -> Chat:
    chat_id = uuid.uuid4()
    chat = await Chat.create(
        id=chat_id,
        owner=owner,
        root_id=chat_id,
        title=f"pr {number}",
        model_config_id=config.id if config else None,
        updated_at=created,
    )
    await Chat.filter(id=chat_id).update(created_at=created)
    await ChatDiffStatus.create(
        chat_id=chat_id,
        git_branch=f"feature-{number}",
        url=f"https://github.com/o/r/pull/{number}" if state else None,
        pull_request_state=state,
        pull_request_title=f"Fix #{number}" if state else None,
        pr_number=number if state else None,
        author_login="octocat" if state else None,
        refreshed_at=refreshed or created,
    )
    return chat


async def _spend(chat: Chat, day: date, micros: int, root: Chat | None = None) -> None:
    await CostChatDay.create(
        user_id=chat.owner_id,  # type: ignore[attr-defined]
        chat_id=chat.id,
        root_chat_id=(root or chat).id,
        day=day,
        cost_micros=micros,
        priced_count=1,
    )


@pytest.fixture(scope="module")
async def world(admin_token: str, member_token: str) -> World:
    admin = await User.get(username="admin")
    member = await User.get(username="member")
    alpha, beta = await _config("alpha"), await _config("beta")
    s = PullRequestState
    chats = {
        # Opened in the window and merged in it.
        "a": await _chat(admin, at(2, 10), alpha, s.MERGED, at(5), number=1),
        "b": await _chat(member, at(3), beta, s.OPEN, number=2),
        # Opened in the previous window, merged at the window's first instant.
        "c": await _chat(member, at(25, month=2), alpha, s.MERGED, FROM, number=3),
        # Closed at the window's end: outside it (the window is half-open).
        "d": await _chat(admin, at(4), beta, s.CLOSED, TO, number=4),
        "e": await _chat(admin, at(23, month=2), alpha, s.CLOSED, at(6), number=5),
        "f": await _chat(admin, at(5), alpha, s.DRAFT, number=6),
        # A branch without a pull request is no pull request.
        "g": await _chat(admin, at(2), alpha, None, number=7),
        # Opened before the previous window, merged in it.
        "h": await _chat(member, at(20, month=2), beta, s.MERGED, at(27, month=2), number=8),
        # No model config.
        "i": await _chat(member, at(6), None, s.OPEN, number=9),
        # Opened after the window.
        "j": await _chat(admin, at(9), alpha, s.OPEN, number=10),
    }
    a = chats["a"]
    sub_id = uuid.uuid4()
    sub = await Chat.create(
        id=sub_id, owner=admin, parent=a, root_id=a.id, title="sub", updated_at=at(2)
    )
    await _spend(a, date(2026, 3, 2), 1000)
    await _spend(a, date(2026, 3, 3), 500)
    await _spend(sub, date(2026, 3, 3), 250, root=a)  # sub-agent spend rolls up to its root
    await _spend(a, date(2026, 4, 1), 50)  # after the window: still what the PR cost
    await _spend(chats["b"], date(2026, 3, 3), 4000)
    await _spend(chats["d"], date(2026, 3, 4), 300)
    await _spend(chats["e"], date(2026, 2, 23), 7000)  # opened before: not counted
    await _spend(chats["j"], date(2026, 3, 9), 9000)
    return World(chats)


async def _insights(
    gql: GraphQLClient, token: str, first: int | None = None, window: dict[str, str] = WINDOW
) -> dict[str, Any]:
    data = await gql.ok(QUERY, {**window, "first": first}, token=token)
    found: dict[str, Any] = data["pullRequestInsights"]
    return found


async def test_counts_in_the_window_and_the_one_before(
    gql: GraphQLClient, admin_token: str, world: World
) -> None:
    got = await _insights(gql, admin_token)
    assert datetime.fromisoformat(got["from"]) == FROM
    assert datetime.fromisoformat(got["to"]) == TO
    assert (got["opened"], got["merged"], got["closed"]) == (5, 2, 1)
    assert (got["previousOpened"], got["previousMerged"]) == (2, 1)


async def test_cost_is_the_whole_spend_of_the_root_chats_behind_opened_prs(
    gql: GraphQLClient, admin_token: str, world: World
) -> None:
    got = await _insights(gql, admin_token)
    assert got["costMicros"] == (1000 + 500 + 250 + 50) + 4000 + 300


async def test_by_day_has_every_utc_day_of_the_window(
    gql: GraphQLClient, admin_token: str, world: World
) -> None:
    got = await _insights(gql, admin_token)
    assert got["byDay"] == [
        {"day": "2026-03-01", "opened": 0, "merged": 1},
        {"day": "2026-03-02", "opened": 1, "merged": 0},
        {"day": "2026-03-03", "opened": 1, "merged": 0},
        {"day": "2026-03-04", "opened": 1, "merged": 0},
        {"day": "2026-03-05", "opened": 1, "merged": 1},
        {"day": "2026-03-06", "opened": 1, "merged": 0},
        {"day": "2026-03-07", "opened": 0, "merged": 0},
    ]


async def test_by_model_names_the_chats_model_config(
    gql: GraphQLClient, admin_token: str, world: World
) -> None:
    got = await _insights(gql, admin_token)
    assert got["byModel"] == [
        {"model": "alpha", "opened": 2, "merged": 2, "costMicros": 1800},
        {"model": "beta", "opened": 2, "merged": 0, "costMicros": 4300},
        {"model": "unknown", "opened": 1, "merged": 0, "costMicros": 0},
    ]


async def test_recent_is_newest_first_and_shows_only_the_viewers_chats(
    gql: GraphQLClient, admin_token: str, world: World
) -> None:
    got = await _insights(gql, admin_token, first=3)
    f, d = world.chats["f"], world.chats["d"]
    assert got["recent"] == [
        {
            "chat": None,  # the member's chat: the admin sees the pull request, not the chat
            "url": "https://github.com/o/r/pull/9",
            "number": 9,
            "title": "Fix #9",
            "state": "open",
            "authorLogin": "octocat",
            "createdAt": at(6).isoformat(),
        },
        {
            "chat": {"id": global_id.encode("Chat", f.id)},
            "url": "https://github.com/o/r/pull/6",
            "number": 6,
            "title": "Fix #6",
            "state": "draft",
            "authorLogin": "octocat",
            "createdAt": at(5).isoformat(),
        },
        {
            "chat": {"id": global_id.encode("Chat", d.id)},
            "url": "https://github.com/o/r/pull/4",
            "number": 4,
            "title": "Fix #4",
            "state": "closed",
            "authorLogin": "octocat",
            "createdAt": at(4).isoformat(),
        },
    ]
    everything = await _insights(gql, admin_token, first=100)
    assert [pr["number"] for pr in everything["recent"]] == [9, 6, 4, 2, 1]


async def test_each_part_is_one_statement_however_many_prs_are_listed(
    gql: GraphQLClient, admin_token: str, world: World
) -> None:
    counts = []
    for first in (2, 5):  # both with chats of the viewer to load
        with counted_queries() as sent:
            got = await _insights(gql, admin_token, first=first)
        assert len(got["recent"]) == first
        # summary, byDay, byModel, recent: one statement each, and the chats in one batch
        assert sum("chat_diff_statuses" in sql for sql in sent) == 4
        counts.append(len(sent))
    assert counts[0] == counts[1]


async def test_members_are_refused(gql: GraphQLClient, member_token: str, world: World) -> None:
    error = await gql.error(QUERY, WINDOW, token=member_token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "VIEW_INSIGHTS" in error["message"]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"from": TO.isoformat(), "to": FROM.isoformat()}, "to"),
        ({"from": FROM.isoformat(), "to": FROM.isoformat()}, "to"),
        ({"from": (TO - timedelta(days=367)).isoformat(), "to": TO.isoformat()}, "from"),
        ({"from": "2026-03-01T00:00:00", "to": TO.isoformat()}, "from"),
        ({**WINDOW, "first": -1}, "first"),
        ({**WINDOW, "first": 101}, "first"),
    ],
)
async def test_bad_ranges_name_the_argument(
    gql: GraphQLClient, admin_token: str, variables: dict[str, Any], field: str
) -> None:
    error = await gql.error(QUERY, variables, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field


def test_default_window_is_the_last_30_utc_days_up_to_now() -> None:
    now = datetime(2026, 3, 8, 15, 30, tzinfo=UTC)
    window = insight_window(None, None, now)
    assert (window.start, window.end) == (datetime(2026, 2, 7, tzinfo=UTC), now)
    assert window.previous_start == window.start - (now - window.start)
    assert len(window.days()) == 30


def test_a_year_is_allowed_and_a_day_more_is_not() -> None:
    assert insight_window(TO - timedelta(days=366), TO).start == TO - timedelta(days=366)
    with pytest.raises(ApiError) as caught:
        insight_window(TO - timedelta(days=366, seconds=1), TO)
    assert caught.value.extensions["field"] == "from"
