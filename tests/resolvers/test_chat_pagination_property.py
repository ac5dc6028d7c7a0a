"""Infinite scroll over the chat list while chats are being created.

Property: paging forward with ``chats(first: n, after: cursor)`` yields every
chat that existed when paging started exactly once, in list order (pinned
first, then updated_at desc, id desc), whatever page size is used and however
new chats are interleaved with the page fetches. New chats sort to the top of
the unpinned part, so they may or may not be seen, but never twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from db.models import Chat, User
from db.vocabulary import UNPINNED_RANK, TokenKind
from resolvers import global_id
from resolvers.accounts import hash_password
from resolvers.tokens import issue_token
from tests.harness import PASSWORD, GraphQLClient

CHATS = """
query($first: Int, $after: String) {
  chats(first: $first, after: $after) {
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""
BASE = datetime(2025, 1, 1, tzinfo=UTC)
FETCH = 0  # a step: fetch the next page; any other number: create that many chats


@dataclass(frozen=True)
class Scenario:
    pinned: list[int]  # updated_at bucket of each pinned chat, pin order 1..n
    unpinned: list[int]  # updated_at bucket of each unpinned chat
    archived: int  # archived chats, never listed
    page_size: int
    steps: list[int]


scenarios = st.builds(
    Scenario,
    pinned=st.lists(st.integers(0, 3), max_size=4),
    # few buckets, so equal updated_at values (the id tie-break) are common
    unpinned=st.lists(st.integers(0, 3), max_size=20),
    archived=st.integers(0, 2),
    page_size=st.integers(1, 7),
    steps=st.lists(st.sampled_from([FETCH, FETCH, 1, 2, 3]), max_size=12),
)

_password_hash: list[str] = []


async def new_token() -> tuple[User, str]:
    if not _password_hash:
        _password_hash.append(await hash_password(PASSWORD))
    user = await User.create(username=f"p{uuid.uuid4().hex[:12]}", password_hash=_password_hash[0])
    expires = datetime.now(UTC) + timedelta(days=1)
    issued = await issue_token(user, TokenKind.SESSION, "session", expires)
    return user, issued.secret


def row(owner: User, updated_at: datetime, *, pin: int = 0, archived: bool = False) -> Chat:
    chat_id = uuid.uuid4()
    return Chat(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title=f"chat {chat_id.hex[:6]}",
        pin_order=pin,
        list_rank=pin or UNPINNED_RANK,
        archived=archived,
        updated_at=updated_at,
    )


def list_order(chat: Chat) -> tuple[Any, ...]:
    return (chat.list_rank, BASE - chat.updated_at, -chat.id.int)  # exact, no float


def chat_key(gid: str) -> uuid.UUID:
    decoded = global_id.decode(gid)
    assert decoded is not None
    assert decoded[0] == "Chat"
    return uuid.UUID(decoded[1])


@settings(max_examples=25, deadline=None)
@given(scenario=scenarios)
async def test_paging_forward_sees_every_original_chat_once_in_order(
    gql: GraphQLClient, admin_token: str, scenario: Scenario
) -> None:
    owner, token = await new_token()
    minute = timedelta(minutes=1)
    originals = [
        row(owner, BASE + bucket * minute, pin=i)
        for i, bucket in enumerate(scenario.pinned, start=1)
    ] + [row(owner, BASE + bucket * minute) for bucket in scenario.unpinned]
    hidden = [row(owner, BASE, archived=True) for _ in range(scenario.archived)]
    await Chat.bulk_create(originals + hidden)
    expected = [c.id for c in sorted(originals, key=list_order)]
    created: set[uuid.UUID] = set()

    seen: list[uuid.UUID] = []
    cursor: str | None = None
    steps = iter(scenario.steps)
    for _ in range(len(originals) + len(scenario.steps) + 50):  # always terminates
        step = next(steps, FETCH)
        if step != FETCH:
            new = [row(owner, datetime.now(UTC)) for _ in range(step)]
            await Chat.bulk_create(new)
            created.update(c.id for c in new)
            continue
        data = await gql.ok(CHATS, {"first": scenario.page_size, "after": cursor}, token=token)
        connection = data["chats"]
        ids = [chat_key(e["node"]["id"]) for e in connection["edges"]]
        assert len(ids) <= scenario.page_size
        seen.extend(ids)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        assert ids, "a page with more to come cannot be empty"
        cursor = connection["pageInfo"]["endCursor"]
    else:
        raise AssertionError("paging never reached the end")

    assert len(seen) == len(set(seen)), "a chat was listed twice"
    assert set(seen) <= set(expected) | created, "a chat that is not listable was listed"
    assert [c for c in seen if c not in created] == expected
