"""Connections built on the keyset pager: a zero-sized page still tells the truth.

``first: 0`` / ``last: 0`` return no edges, but ``hasNextPage`` /
``hasPreviousPage`` still say whether there are rows that way (they read one
row), and cursors are still checked. The chat list stands for every connection
paginated by ``resolvers.pagination`` (the message history has its own pager,
tested with the messages).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from db.models import Chat
from tests.harness import GraphQLClient, new_person

CHATS = """
query($first: Int, $after: String, $last: Int, $before: String) {
  chats(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { title } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def chats(gql: GraphQLClient, token: str, **args: Any) -> Any:
    data = await gql.ok(CHATS, args, token=token)
    return data["chats"]


def outcome(connection: dict[str, Any]) -> tuple[list[str], bool, bool]:
    info = connection["pageInfo"]
    titles = [edge["node"]["title"] for edge in connection["edges"]]
    return titles, info["hasPreviousPage"], info["hasNextPage"]


async def test_a_zero_sized_chat_page_says_whether_chats_lie_beyond(gql: GraphQLClient) -> None:
    person = await new_person("pager")
    assert outcome(await chats(gql, person.token, first=0)) == ([], False, False)
    assert outcome(await chats(gql, person.token, last=0)) == ([], False, False)
    now = datetime.now(UTC)
    for n in range(3):
        chat_id = uuid.uuid4()
        await Chat.create(
            id=chat_id,
            owner_id=person.user.id,
            root_id=chat_id,
            title=f"c{n}",
            updated_at=now - timedelta(minutes=n),
        )
    listed = await chats(gql, person.token, first=3)
    assert outcome(listed) == (["c0", "c1", "c2"], False, False)
    first, middle, last = [edge["cursor"] for edge in listed["edges"]]
    cases: list[tuple[dict[str, Any], tuple[bool, bool]]] = [
        ({"first": 0}, (False, True)),
        ({"last": 0}, (True, False)),
        ({"first": 0, "after": middle}, (True, True)),
        ({"last": 0, "before": middle}, (True, True)),
        ({"first": 0, "after": last}, (True, False)),
        ({"last": 0, "before": first}, (False, True)),
    ]
    for args, (previous, following) in cases:
        zero = await chats(gql, person.token, **args)
        assert outcome(zero) == ([], previous, following), args
        assert zero["pageInfo"]["startCursor"] is None
        assert zero["pageInfo"]["endCursor"] is None


async def test_a_zero_sized_page_still_checks_its_cursor(gql: GraphQLClient) -> None:
    person = await new_person("pager")
    error = await gql.error(CHATS, {"first": 0, "after": "garbage!"}, token=person.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
