"""One published event as every local subscriber of its channel receives it.

The hub decodes a message once and puts the SAME typed event in the queue of
each subscriber of the channel, marked with ``delivered``. What subscribers
derive from it (the rows read for it, the objects their GraphQL selections run
on) can therefore be built once and kept with the event: 500 live clients of one
chat then cost one database read per event, not 500.

Objects handed to several subscribers this way are marked with ``share``. Code
that caches work per root object (the subscription executor keeps the GraphQL
result of each distinct selection there) only does so for marked objects, never
for rows made for one subscriber (its replay, its resync).

A shared row can also skip the subscriber's own pipeline: the transport puts a
``FrameLane`` in the context of each operation it runs (``current_lane``), and a
live stream hands it the rows of events it takes directly from its
subscription (``Subscription.direct``); the lane writes the frame encoded once
for every subscriber with the same selection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from events.subscription import Subscription

T = TypeVar("T")

_MEMO = "_shared_memo"
_DERIVED = "_hub_derived"


class Derivations:
    """Values computed from one hub event, shared by all its local subscribers.

    ``derive`` and ``derive_async`` keep values computed from it; their keys must
    name everything a value depends on besides the event (a chat id, a cursor),
    since subscribers of one channel may differ in those.
    """

    __slots__ = ("_derived", "_pending")

    def __init__(self) -> None:
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


def delivered(event: T) -> T:
    """Mark a decoded event as the one object every local subscriber receives."""
    object.__setattr__(event, _DERIVED, Derivations())
    return event


def _derivations(event: object) -> Derivations | None:
    found: Derivations | None = getattr(event, _DERIVED, None)
    return found


def share(row: T) -> T:
    """Mark ``row`` as handed unchanged to several subscribers (see ``shared_memo``)."""
    object.__setattr__(row, _MEMO, {})
    return row


def shared_memo(row: object) -> dict[Any, Any] | None:
    """The cache that travels with a shared row; None for a row of one subscriber."""
    memo: dict[Any, Any] | None = getattr(row, _MEMO, None)
    return memo


def shared_row(event: object, key: Hashable, build: Callable[[], T]) -> T:
    """The row for ``event``: built once and shared when it is a hub event,
    private (unmarked) when it was made for one subscriber, like a resync."""
    derived = _derivations(event)
    if derived is not None:
        return derived.derive(key, lambda: share(build()))
    return build()


async def shared_read(event: object, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
    """``read()`` once per hub event and key; once per call for anything else."""
    derived = _derivations(event)
    if derived is not None:
        return await derived.derive_async(key, read)
    return await read()


class FrameLane(Protocol):
    """One operation's way to its socket that bypasses its own generator."""

    executor: Any
    """The operation's GraphQL executor, set by the schema layer when it has one."""

    def try_deliver(self, row: object, subscription: Subscription) -> bool:
        """Write ``row``'s frame now (True), or leave it to the generator (False,
        nothing sent)."""
        ...

    def take_result(self, row: object) -> Any:
        """The result a failed ``try_deliver`` computed for ``row`` (None: none), once:
        the generator's execution of the same row uses it instead of running again."""
        ...


_LANE: ContextVar[FrameLane | None] = ContextVar("frame_lane", default=None)


def current_lane() -> FrameLane | None:
    """The lane of the operation running in this task, if its transport has one."""
    return _LANE.get()


def use_lane(lane: FrameLane) -> None:
    """Make ``lane`` the current operation's (call at the start of its task)."""
    _LANE.set(lane)


@contextmanager
def acting_as(lane: FrameLane) -> Iterator[None]:
    """Run a block as ``lane``'s operation. A direct delivery runs in the hub's
    task, whose context may have been copied from another operation's (the task
    that first subscribed the channel): without this, that operation's lane (its
    executor, its computed result) would be used for this one."""
    token = _LANE.set(lane)
    try:
        yield
    finally:
        _LANE.reset(token)
