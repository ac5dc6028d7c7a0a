"""Subscription events execute once per distinct selection, not once per subscriber.

graphql-core runs a subscription's selection set for every event of every
subscriber. When the event's root object is shared (``events.sharing.share``:
built once from a hub event and handed to every local subscriber of a channel),
subscribers with the same document, variables and viewer would compute the
same result. The first of them executes; the others reuse its result, also
while it is still running (they await the same task, which none of them can
cancel alone).

What may be shared, and what not:
- only roots marked shared; rows made for one subscriber (replay, resync) run
  per subscriber as before;
- only between equal (operation node, variables, operation extensions, viewer):
  resolvers below a subscription may depend on those and the event, nothing
  else of the connection;
- never a result with errors: each subscriber then executes and gets its own.

A reused result's data is a ``SharedData``: the transport encodes it once for
all the subscribers it goes to. The executor of a subscription run by a
transport with a ``FrameLane`` (``events.sharing``) is given to that lane, which
executes the rows of directly delivered events with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

from graphql import ExecutionResult, OperationType

from events.sharing import current_lane, shared_memo
from resolvers.context import RequestContext
from schema.engine.graphql_core_compat import own_sub_field_cache
from schema.engine.strawberry_compat import StrawberryGraphQLCoreExecutionContext

Viewer = tuple[Any, ...]


class SharedData(dict[str, Any]):
    """The data of a result several subscribers receive; read-only. ``encoded``
    and ``frames`` are for the transport, to keep the data's encoding (and the
    frames made of it) once for all of them."""

    __slots__ = ("encoded", "frames")

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.encoded: Any = None
        self.frames: dict[Any, Any] = {}


class _Shared:
    """One selection's result for one shared root: done, running, or not reusable."""

    __slots__ = ("extensions", "operation", "result", "reusable", "task", "variables", "viewer")

    def __init__(self, executor: SharedEventExecutor, viewer: Viewer) -> None:
        self.operation = executor.operation
        self.variables = executor.variable_values.coerced
        self.extensions = executor.operation_extensions
        self.viewer = viewer
        self.result: ExecutionResult | None = None
        self.task: asyncio.Future[ExecutionResult] | None = None
        self.reusable = True

    def matches(self, executor: SharedEventExecutor, viewer: Viewer) -> bool:
        return (
            self.operation is executor.operation
            and self.viewer == viewer
            and self.variables == executor.variable_values.coerced
            and self.extensions == executor.operation_extensions
        )

    def keep(self, result: ExecutionResult) -> ExecutionResult:
        if result.errors:
            self.reusable = False
        else:
            if isinstance(result.data, dict):
                result.data = SharedData(result.data)
            self.result = result
        return result


def _viewer_key(context: object) -> Viewer | None:
    """Everything of the connection a subscription's results may depend on."""
    if not isinstance(context, RequestContext) or context.auth_error is not None:
        return None
    viewer = context.viewer
    if viewer is None:
        return None
    return (viewer.id, viewer.role, viewer.disabled)


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, reusing per-event results between subscribers."""

    def __copy__(self) -> SharedEventExecutor:
        # graphql-core copies the executor for every event of every subscriber;
        # the same shallow copy as ``copy.copy``, without its generic protocol,
        # except the memo of collected subfields: shared, it would keep every
        # event's entries for as long as the subscription is open.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        own_sub_field_cache(clone)
        return clone

    def build_per_event_executor(self, payload: Any) -> Any:
        lane = current_lane()
        if lane is not None and lane.executor is None:
            lane.executor = self  # the subscription's own executor, not a per-event copy
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        lane = current_lane()
        if lane is not None:
            computed = lane.take_result(self.root_value)
            if computed is not None:
                return computed  # computed for this subscriber, which did not send it
        memo = shared_memo(self.root_value)
        if memo is None or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        viewer = _viewer_key(self.context_value)
        if viewer is None:
            return super().execute_operation(serially)
        entries: list[_Shared] = memo.setdefault(id(self.operation), [])
        for entry in entries:
            if entry.matches(self, viewer):
                return self._reuse(entry, serially)
        entry = _Shared(self, viewer)
        entries.append(entry)
        outcome = super().execute_operation(serially)
        if not self.is_awaitable(outcome):
            return entry.keep(cast(ExecutionResult, outcome))
        task = entry.task = asyncio.ensure_future(cast(Awaitable[ExecutionResult], outcome))
        task.add_done_callback(lambda done: _settle(entry, done))
        return asyncio.shield(task)

    def _reuse(self, entry: _Shared, serially: bool | None) -> Any:
        if entry.result is not None:
            return entry.result
        if entry.task is None or not entry.reusable:
            return super().execute_operation(serially)
        return self._await_shared(entry.task, serially)

    async def _await_shared(
        self, task: asyncio.Future[ExecutionResult], serially: bool | None
    ) -> ExecutionResult:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this subscriber was cancelled, not the shared run
            result = None
        except Exception:
            result = None
        if result is not None and not result.errors:
            return result
        own = super().execute_operation(serially)  # errors stay each subscriber's own
        if self.is_awaitable(own):
            return await cast(Awaitable[ExecutionResult], own)
        return cast(ExecutionResult, own)


def _settle(entry: _Shared, done: asyncio.Future[ExecutionResult]) -> None:
    entry.task = None
    if done.cancelled() or done.exception() is not None:
        entry.reusable = False
    else:
        entry.keep(done.result())
