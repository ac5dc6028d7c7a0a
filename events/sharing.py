"""One published event as every local subscriber of its channel receives it.

The hub decodes a message once and puts the SAME ``HubEvent`` in the queue of
each subscriber of the channel. What subscribers derive from it (the rows read
for it, the objects their GraphQL selections run on) can therefore be built once
and kept on the event: 500 live clients of one chat then cost one database read
per event, not 500.

Objects handed to several subscribers this way are marked with ``share``. Code
that caches work per root object (the subscription executor keeps the GraphQL
result of each distinct selection there) only does so for marked objects, never
for rows made for one subscriber (its replay, its resync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO = "_shared_memo"


class HubEvent(dict[str, Any]):
    """A decoded event shared by all local subscribers of its channel: read-only.

    ``derive`` and ``derive_async`` keep values computed from it; their keys must
    name everything a value depends on besides the event (a chat id, a cursor),
    since subscribers of one channel may differ in those.
    """

    __slots__ = ("_derived", "_pending")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[Hashable, Any] = {}
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

    def derive(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()`` once per key for this event; every caller gets that value."""
        try:
            value: T = self._derived[key]
        except KeyError:
            value = self._derived[key] = build()
        return value

    async def derive_async(self, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        """``derive`` for reads: callers share one task, which a cancelled caller
        does not cancel; a failed read is not kept, the next caller tries again."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(build())
            pending.add_done_callback(lambda done: self._settle(key, done))
        result: T = await asyncio.shield(pending)
        return result

    def _settle(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        # Reading the exception also keeps asyncio from logging it as unretrieved.
        failed = done.cancelled() or done.exception() is not None
        if failed and self._pending.get(key) is done:
            del self._pending[key]


def share(row: T) -> T:
    """Mark ``row`` as handed unchanged to several subscribers (see ``shared_memo``)."""
    object.__setattr__(row, _MEMO, {})
    return row


def shared_memo(row: object) -> dict[Any, Any] | None:
    """The cache that travels with a shared row; None for a row of one subscriber."""
    memo: dict[Any, Any] | None = getattr(row, _MEMO, None)
    return memo


def shared_row(event: Mapping[str, Any], key: Hashable, build: Callable[[], T]) -> T:
    """The row for ``event``: built once and shared when it is a hub event,
    private (unmarked) when it was made for one subscriber, like a resync."""
    if isinstance(event, HubEvent):
        return event.derive(key, lambda: share(build()))
    return build()


async def shared_read(
    event: Mapping[str, Any], key: Hashable, read: Callable[[], Awaitable[T]]
) -> T:
    """``read()`` once per hub event and key; once per call for anything else."""
    if isinstance(event, HubEvent):
        return await event.derive_async(key, read)
    return await read()
