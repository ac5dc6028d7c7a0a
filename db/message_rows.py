"""The message history page, read with one prepared statement into light rows.

``MessageRow`` carries the same attribute names as the ``ChatMessage`` model, so
the GraphQL ``Message`` type describes either; list pages use rows because
building 50 ORM instances per request cost more than the query itself.
"""

from __future__ import annotations

import functools
import uuid
from binascii import b2a_base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from asyncpg import Record

from db.keyset import InvalidCursor, Page, SortKey, decode_cursor
from db.raw_sql import pool
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
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_loads = orjson.loads
_KEY = (SortKey("id", kind="bigint"),)
BEYOND = 2**63 - 1


class MessageRow(Record):  # type: ignore[misc]
    """A page row as asyncpg builds it (in C: no Python constructor per row), read
    through properties named like the model's attributes, by position in
    ``COLUMNS``. ``role`` and ``parts`` are converted on each read; the Message
    type reads each once."""

    __slots__ = ()

    @property
    def id(self) -> int:
        return self[0]  # type: ignore[no-any-return]

    @property
    def chat_id(self) -> uuid.UUID:
        return self[1]  # type: ignore[no-any-return]

    @property
    def role(self) -> MessageRole:
        return _ROLES[self[2]]

    @property
    def parts(self) -> list[dict[str, Any]]:
        return _loads(self[3])  # type: ignore[no-any-return]

    @property
    def created_at(self) -> datetime:
        return self[4]  # type: ignore[no-any-return]

    @property
    def created_by_id(self) -> uuid.UUID | None:
        return self[5]  # type: ignore[no-any-return]

    @property
    def model_config_id(self) -> uuid.UUID | None:
        return self[6]  # type: ignore[no-any-return]

    @property
    def input_tokens(self) -> int | None:
        return self[7]  # type: ignore[no-any-return]

    @property
    def output_tokens(self) -> int | None:
        return self[8]  # type: ignore[no-any-return]

    @property
    def reasoning_tokens(self) -> int | None:
        return self[9]  # type: ignore[no-any-return]

    @property
    def cache_read_tokens(self) -> int | None:
        return self[10]  # type: ignore[no-any-return]

    @property
    def cache_write_tokens(self) -> int | None:
        return self[11]  # type: ignore[no-any-return]

    @property
    def total_cost_micros(self) -> int | None:
        return self[12]  # type: ignore[no-any-return]

    @property
    def runtime_ms(self) -> int | None:
        return self[13]  # type: ignore[no-any-return]


async def _fetch_rows(sql: str, *args: Any) -> list[MessageRow]:
    return list(await pool().fetch(sql, *args, record_class=MessageRow))


@functools.lru_cache(maxsize=65536)
def message_cursor(message_id: int) -> str:
    """``encode_cursor([id])``, without the JSON round trip (one per message;
    cached like message ids, since the same pages are read again and again)."""
    raw = b2a_base64(b"[%d]" % message_id, newline=False).translate(_URLSAFE)
    return raw.rstrip(b"=").decode("ascii")


def _cursor_id(cursor: str | None, default: int) -> int:
    if cursor is None:
        return default
    (value,) = decode_cursor(cursor, _KEY)
    if not isinstance(value, int) or not 0 <= value <= BEYOND:
        raise InvalidCursor(cursor)
    return int(value)


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    args: tuple[int, ...]
    size: int
    backward: bool
    after: str | None
    before: str | None

    def page(self, rows: list[MessageRow]) -> Page[MessageRow]:
        """``LIMIT n+1`` rows → the page, oldest first either way."""
        more = len(rows) > self.size
        del rows[self.size :]
        if self.backward:
            rows.reverse()
        return Page(
            items=rows,
            cursors=[message_cursor(r[0]) for r in rows],
            has_next_page=more if not self.backward else self.before is not None,
            has_previous_page=more if self.backward else self.after is not None,
        )


def _plan(
    first: int | None, after: str | None, last: int | None, before: str | None, default: int
) -> _Plan:
    low, high = _cursor_id(after, 0), _cursor_id(before, BEYOND)
    backward = last is not None and first is None
    wanted = last if backward else first
    size = default if wanted is None else wanted  # 0: no rows, but whether there are
    if backward:
        sql, args = (_NEWEST, (high,)) if low == 0 else (_BETWEEN_DESC, (low, high))
    else:
        sql, args = (_OLDEST, (low,)) if high == BEYOND else (_BETWEEN_ASC, (low, high))
    return _Plan(sql, args, size, backward, after, before)


async def message_page(
    chat_id: uuid.UUID,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int,
) -> Page[MessageRow]:
    """Keyset page on id: one prepared statement, ``LIMIT n+1``."""
    plan = _plan(first, after, last, before, default_size)
    return plan.page(await _fetch_rows(plan.sql, chat_id, *plan.args, plan.size + 1))


def _lateral(sql: str) -> str:
    """The same page for many chats in one statement: the per-chat query run for
    each id of the array ``$1`` (a LATERAL join); the other placeholders stay."""
    inner = sql.replace("chat_id = $1", "chat_id = c.id")
    return f"SELECT m.* FROM unnest($1::uuid[]) AS c(id) CROSS JOIN LATERAL ({inner}) m"


_LATERAL = {sql: _lateral(sql) for sql in (_NEWEST, _OLDEST, _BETWEEN_DESC, _BETWEEN_ASC)}


async def message_pages(
    chat_ids: list[uuid.UUID],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int,
) -> dict[uuid.UUID, Page[MessageRow]]:
    """``message_page`` for many chats with one query (chat lists showing previews)."""
    plan = _plan(first, after, last, before, default_size)
    grouped: dict[uuid.UUID, list[MessageRow]] = {key: [] for key in chat_ids}
    for row in await _fetch_rows(_LATERAL[plan.sql], chat_ids, *plan.args, plan.size + 1):
        grouped[row.chat_id].append(row)
    return {key: plan.page(rows) for key, rows in grouped.items()}


async def messages_after(chat_id: uuid.UUID, after_id: int, limit: int = 200) -> list[MessageRow]:
    """Visible messages newer than ``after_id``, oldest first (stream replay)."""
    return await _fetch_rows(_OLDEST, chat_id, after_id, limit)


def cursor_id(cursor: str | None) -> int:
    """The message id inside a message cursor (0 for none); ``InvalidCursor`` if bad."""
    return _cursor_id(cursor, 0)
