"""Relay connections over keyset pages (``db.keyset.Page``).

``Connection[User]`` is named ``UserConnection`` by Strawberry, ``Edge[User]``
``UserEdge``, matching the contract's naming.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import strawberry

from db.keyset import Page

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo


class _EdgeRow:
    """What ``Edge`` fields read: cheaper to build than the Strawberry type."""

    __slots__ = ("cursor", "node")

    def __init__(self, cursor: str, node: Any) -> None:
        self.cursor = cursor
        self.node = node


def connection_of(page: Page[Any]) -> Any:
    """Wrap a page; typed ``Any`` because the node type is a row, not ``T``."""
    return Connection(
        edges=[_EdgeRow(c, n) for c, n in zip(page.cursors, page.items, strict=True)],  # type: ignore[misc]
        nodes=page.items,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
    )
