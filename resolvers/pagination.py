"""Validating connection arguments before they reach a keyset query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

from db.keyset import InvalidCursor, Page, SortKey, fetch_page
from db.vocabulary import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from resolvers.errors import bad_input

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def checked(self, maximum: int = MAX_PAGE_SIZE) -> PageArgs:
        """Negative sizes are errors; oversized ones are clamped to ``maximum``."""
        for name, value in (("first", self.first), ("last", self.last)):
            if value is not None and value < 0:
                raise bad_input(name, "must be zero or more")
        if self.first is not None and self.last is not None:
            raise bad_input("last", "pass either first or last, not both")
        return PageArgs(
            first=None if self.first is None else min(self.first, maximum),
            after=self.after,
            last=None if self.last is None else min(self.last, maximum),
            before=self.before,
        )


def history_page_args(args: PageArgs) -> PageArgs:
    """A message history page's arguments as its loader keys them: the newest
    page by default (the oldest after a cursor), checked and clamped."""
    if args.first is None and args.last is None:
        size = DEFAULT_PAGE_SIZE
        args = replace(args, first=size) if args.after else replace(args, last=size)
    return args.checked()  # a zero-sized page still reads one row: is there more?


async def paginate(
    query: QuerySet[M],
    order: Sequence[SortKey],
    args: PageArgs,
    *,
    default_size: int = DEFAULT_PAGE_SIZE,
    maximum: int = MAX_PAGE_SIZE,
) -> Page[M]:
    args = args.checked(maximum)
    try:
        return await fetch_page(
            query,
            order,
            first=args.first,
            after=args.after,
            last=args.last,
            before=args.before,
            default_size=default_size,
        )
    except InvalidCursor:
        raise bad_input("after" if args.after else "before", "not a valid cursor") from None
