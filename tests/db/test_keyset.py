"""Cursors come from clients: any cursor this server did not make is
InvalidCursor (BAD_USER_INPUT), never a value the database cannot compare."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from db.keyset import InvalidCursor, SortKey, decode_cursor, encode_cursor
from tests.harness import GraphQLClient

CHAT_ORDER = (
    SortKey("list_rank", kind="int"),
    SortKey("updated_at", descending=True, kind="datetime"),
    SortKey("id", descending=True, kind="uuid"),
)
WHEN = "2025-01-01T00:00:00+00:00"
SOME = str(uuid.uuid4())


def cursor(values: list[Any]) -> str:
    """Made by hand: ``encode_cursor`` refuses what a client can still send."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "values",
    [
        [2**31, WHEN, SOME],  # past an int column
        [2**70, WHEN, SOME],
        [-(2**31) - 1, WHEN, SOME],
        [1.5e19, WHEN, SOME],
        [True, WHEN, SOME],
        [1, "2025-01-01T00:00:00", SOME],  # no time zone
        [1, "0001-01-01T00:00:00+23:59", SOME],  # before year 1 in UTC
        [1, WHEN, "not-a-uuid"],
    ],
    ids=str,
)
def test_values_a_column_cannot_hold_are_invalid(values: list[Any]) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor(values), CHAT_ORDER)


def test_bigint_cursors_take_64_bits() -> None:
    order = (SortKey("id", kind="bigint"),)
    assert decode_cursor(cursor([2**63 - 1]), order) == (2**63 - 1,)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor([2**63]), order)


def test_text_cursors_refuse_what_postgres_cannot_compare() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor(["a\x00"]), (SortKey("name"),))


def test_our_own_cursors_round_trip() -> None:
    values = (3, datetime(2025, 1, 1, tzinfo=UTC), uuid.UUID(SOME))
    assert decode_cursor(encode_cursor(values), CHAT_ORDER) == values


async def test_an_overflowing_chat_cursor_is_bad_user_input(
    gql: GraphQLClient, admin_token: str
) -> None:
    query = "query($a: String) { chats(after: $a) { nodes { id } } }"
    error = await gql.error(query, {"a": cursor([2**40, WHEN, SOME])}, token=admin_token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}, error
