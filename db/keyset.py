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
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

T = TypeVar("T")
M = TypeVar("M", bound=Model)

Kind = Literal["datetime", "uuid", "int", "str", "bool"]

_PARSE: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "uuid": uuid.UUID,
    "int": int,
    "str": str,
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
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
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

    ``last``/``before`` page backwards; items always come back in sort order.
    """
    backward = last is not None and first is None
    size = (last if backward else first) or default_size
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
