"""Keyset (seek) pagination: opaque cursors over an ordered tuple of columns.

Never offsets: a page boundary is the last row's sort tuple, so rows inserted
while a client pages produce neither duplicates nor gaps.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from db.text_rules import forbidden_character

T = TypeVar("T")
M = TypeVar("M", bound=Model)

Kind = Literal["datetime", "uuid", "int", "bigint", "str", "bool"]


def _bounded(bits: int) -> Callable[[Any], int]:
    """A cursor's integer as the column holds it: Python ints have no bound, and a
    number past the column's would fail in the query as a server error."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def parse(value: Any) -> int:
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"not a {bits}-bit integer")
        return value

    return parse


def _aware(value: Any) -> datetime:
    """Cursors hold aware instants (timestamptz), within the years Python has."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed.astimezone(UTC)


def _text(value: Any) -> str:
    if not isinstance(value, str) or forbidden_character(value) is not None:
        raise ValueError("not text a column holds")
    return value


_PARSE: dict[str, Callable[[Any], Any]] = {
    "datetime": _aware,
    "uuid": uuid.UUID,
    "int": _bounded(32),
    "bigint": _bounded(64),
    "str": _text,
    "bool": bool,
}


class InvalidCursor(ValueError):
    """The client sent a cursor this ordering did not produce."""


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False
    kind: Kind = "str"


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


def encode_cursor(values: Sequence[Any]) -> str:
    raw = orjson.dumps([str(v) if isinstance(v, uuid.UUID) else v for v in values])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, order: Sequence[SortKey]) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
        if not isinstance(values, list) or len(values) != len(order):
            raise InvalidCursor(cursor)
        return tuple(_PARSE[k.kind](v) for k, v in zip(order, values, strict=True))
    except (
        binascii.Error,
        orjson.JSONDecodeError,
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
    ) as exc:
        raise InvalidCursor(cursor) from exc


def cursor_of(row: object, order: Sequence[SortKey]) -> str:
    return encode_cursor([getattr(row, k.field) for k in order])


def seek(order: Sequence[SortKey], values: Sequence[Any], *, forward: bool) -> Q:
    """Rows strictly after (``forward``) or before the tuple ``values``.

    Expands the row-value comparison into OR-of-ANDs so mixed directions work.
    """
    clauses: list[Q] = []
    for i, key in enumerate(order):
        equal = {order[j].field: values[j] for j in range(i)}
        greater = key.descending != forward  # ascending+forward → greater
        op = "gt" if greater else "lt"
        clauses.append(Q(**equal, **{f"{key.field}__{op}": values[i]}))
    result = clauses[0]
    for clause in clauses[1:]:
        result |= clause
    return result


def _ordering(order: Sequence[SortKey], *, reverse: bool) -> list[str]:
    return [("-" if k.descending != reverse else "") + k.field for k in order]


async def fetch_page(
    query: QuerySet[M],
    order: Sequence[SortKey],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int,
) -> Page[M]:
    """One page with one query: ``LIMIT n+1`` tells whether more rows exist.

    ``last``/``before`` page backwards; items always come back in sort order. A
    size of 0 reads one row all the same: no items, but whether there are more.
    """
    backward = last is not None and first is None
    wanted = last if backward else first
    size = default_size if wanted is None else wanted
    if after is not None:
        query = query.filter(seek(order, decode_cursor(after, order), forward=True))
    if before is not None:
        query = query.filter(seek(order, decode_cursor(before, order), forward=False))
    rows = await query.order_by(*_ordering(order, reverse=backward)).limit(size + 1)
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    return Page(
        items=rows,
        cursors=[cursor_of(r, order) for r in rows],
        has_next_page=more if not backward else before is not None,
        has_previous_page=more if backward else after is not None,
    )
