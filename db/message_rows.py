"""The message history page, read with one prepared statement into light rows.

``MessageRow`` carries the same attribute names as the ``ChatMessage`` model, so
the GraphQL ``Message`` type describes either; list pages use rows because
building 50 ORM instances per request cost more than the query itself.
"""

from __future__ import annotations

import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from db.keyset import InvalidCursor, Page, SortKey, decode_cursor
from db.raw_sql import fetch
from db.vocabulary import MessageRole

COLUMNS = (
    "id, chat_id, role, parts::text, created_at, created_by_id, model_config_id, "
    "input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, cache_write_tokens, "
    "total_cost_micros, runtime_ms"
)
VISIBLE = "chat_id = $1 AND NOT deleted AND visibility <> 'model'"
_NEWEST = (
    f"SELECT {COLUMNS} FROM chat_messages WHERE {VISIBLE} AND id < $2 ORDER BY id DESC LIMIT $3"
)
_OLDEST = f"SELECT {COLUMNS} FROM chat_messages WHERE {VISIBLE} AND id > $2 ORDER BY id LIMIT $3"
_BETWEEN_DESC = (
    f"SELECT {COLUMNS} FROM chat_messages WHERE {VISIBLE} AND id > $2 AND id < $3 "
    "ORDER BY id DESC LIMIT $4"
)
_BETWEEN_ASC = (
    f"SELECT {COLUMNS} FROM chat_messages WHERE {VISIBLE} AND id > $2 AND id < $3 "
    "ORDER BY id LIMIT $4"
)
_ROLES = {r.value: r for r in MessageRole}
_KEY = (SortKey("id", kind="int"),)
BEYOND = 2**63 - 1


@dataclass(slots=True)
class MessageRow:
    id: int
    chat_id: uuid.UUID
    role: MessageRole
    parts: list[dict[str, Any]]
    created_at: datetime
    created_by_id: uuid.UUID | None
    model_config_id: uuid.UUID | None
    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    total_cost_micros: int | None
    runtime_ms: int | None


def _row(r: Any) -> MessageRow:
    return MessageRow(
        r[0], r[1], _ROLES[r[2]], orjson.loads(r[3]), r[4], r[5], r[6],
        r[7], r[8], r[9], r[10], r[11], r[12], r[13],
    )  # fmt: skip


def message_cursor(message_id: int) -> str:
    """``encode_cursor([id])``, without the JSON round trip (one per message)."""
    return urlsafe_b64encode(b"[%d]" % message_id).rstrip(b"=").decode("ascii")


def _cursor_id(cursor: str | None, default: int) -> int:
    if cursor is None:
        return default
    (value,) = decode_cursor(cursor, _KEY)
    if not isinstance(value, int) or not 0 <= value <= BEYOND:
        raise InvalidCursor(cursor)
    return int(value)


async def message_page(
    chat_id: uuid.UUID,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int,
) -> Page[MessageRow]:
    """Keyset page on id, ``LIMIT n+1``; rows come back oldest first either way."""
    low, high = _cursor_id(after, 0), _cursor_id(before, BEYOND)
    backward = last is not None and first is None
    size = (last if backward else first) or default_size
    if backward:
        sql, args = (_NEWEST, (high,)) if low == 0 else (_BETWEEN_DESC, (low, high))
    else:
        sql, args = (_OLDEST, (low,)) if high == BEYOND else (_BETWEEN_ASC, (low, high))
    records = await fetch(sql, chat_id, *args, size + 1)
    more = len(records) > size
    rows = [_row(r) for r in records[:size]]
    if backward:
        rows.reverse()
    return Page(
        items=rows,
        cursors=[message_cursor(r.id) for r in rows],
        has_next_page=more if not backward else before is not None,
        has_previous_page=more if backward else after is not None,
    )


async def messages_after(chat_id: uuid.UUID, after_id: int, limit: int = 200) -> list[MessageRow]:
    """Visible messages newer than ``after_id``, oldest first (stream replay)."""
    return [_row(r) for r in await fetch(_OLDEST, chat_id, after_id, limit)]


def cursor_id(cursor: str | None) -> int:
    """The message id inside a message cursor (0 for none); ``InvalidCursor`` if bad."""
    return _cursor_id(cursor, 0)
