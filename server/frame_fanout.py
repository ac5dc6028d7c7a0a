"""One event's frame, encoded once per selection, written to every subscriber's socket.

A shared event (``events.sharing``) reaches hundreds of subscribers of one chat.
Each of them used to resume its own chain of async generators (the stream, the
GraphQL mapping, Strawberry's result handling), build a ``next`` message and
encode it. Here a subscriber parked in its subscription takes a live event
directly (``Subscription.direct``): its lane runs the selection on the shared
row (the executor reuses the result of the first subscriber with the same
selection), and the ``next`` frame's tail, everything after the operation id,
is encoded once and kept with that result. Each subscriber adds only its id and
writes the text to its socket at once.

A lane delivers only what it can send exactly as Strawberry would: an error-free
shared result, with the ``extensions`` its operation's frames carry (learned
from the frames Strawberry sent it, e.g. the operation's cost). Anything else
(errors, a selection still executing, a private row) stays with the generator.
A socket write that has to wait (the client reads slowly) finishes in a task of
its own while the subscription is held, so later events keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

import orjson
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from events.sharing import acting_as, current_lane
from events.subscription import Subscription
from schema.engine.shared_execution import SharedData

log = logging.getLogger(__name__)


class FanoutCounts:
    """How often an event's data was JSON-encoded for the wire, and how many frames
    went out directly (for tests and metrics)."""

    encodes = 0
    direct_frames = 0


def encoded_data(data: SharedData) -> orjson.Fragment:
    """``data`` as JSON, encoded on first use and kept for every other subscriber."""
    if data.encoded is None:
        FanoutCounts.encodes += 1
        data.encoded = orjson.Fragment(orjson.dumps(data))
    fragment: orjson.Fragment = data.encoded
    return fragment


def learn_frame(message: Mapping[str, object]) -> None:
    """Called for every message Strawberry sends: a lane learns its operation's
    frame extensions from its error-free ``next`` frames."""
    lane = current_lane()
    if not isinstance(lane, SocketLane) or message.get("id") != lane.operation.id:
        return
    payload = message.get("payload")
    if message.get("type") == "next" and isinstance(payload, dict) and "errors" not in payload:
        lane.learn_extensions(payload.get("extensions"))


class SocketLane:
    """The direct way from shared rows to one graphql-transport-ws operation."""

    def __init__(
        self, handler: BaseGraphQLTransportWSHandler[Any, Any], operation: Operation[Any, Any]
    ) -> None:
        self.handler = handler
        self.operation = operation
        self.executor: Any = None
        self._prefix = '{"id":' + orjson.dumps(operation.id).decode() + ","
        self._extensions: bytes | None = None  # None: no frame sent yet
        self._computed: tuple[object, Any] | None = None

    def learn_extensions(self, extensions: object) -> None:
        self._extensions = orjson.dumps(extensions or None)

    @property
    def open(self) -> bool:
        handler, operation = self.handler, self.operation
        return (
            not getattr(handler, "ended", False)
            and not operation.completed
            and handler.operations.get(operation.id) is operation
        )

    def try_deliver(self, row: object, subscription: Subscription) -> bool:
        if self.executor is None or self._extensions is None or not self.open:
            return False
        with acting_as(self):
            outcome = self.executor.build_per_event_executor(row).execute_operation(False)
        if self.executor.is_awaitable(outcome):
            _drop(outcome)  # still executing: the generator will wait for it
            return False
        data = getattr(outcome, "data", None)
        if getattr(outcome, "errors", None) or not isinstance(data, SharedData):
            self._computed = (row, outcome)  # errors are this subscriber's own
            return False
        tail = data.frames.get(self._extensions)
        if tail is None:
            tail = data.frames[self._extensions] = _tail(data, self._extensions)
        FanoutCounts.direct_frames += 1
        _write_now(self.handler.websocket, self._prefix + tail, subscription)
        return True

    def take_result(self, row: object) -> Any:
        computed, self._computed = self._computed, None
        if computed is None or computed[0] is not row:
            return None
        return computed[1]


def _tail(data: SharedData, extensions: bytes) -> str:
    """Everything of a ``next`` frame after the id, as Strawberry's ``send_next`` lays it out."""
    payload: dict[str, object] = {"data": encoded_data(data)}
    if extensions != b"null":
        payload["extensions"] = orjson.Fragment(extensions)
    return orjson.dumps({"type": "next", "payload": payload}).decode()[1:]


def _drop(outcome: Any) -> None:
    if isinstance(outcome, Coroutine):
        outcome.close()
    elif isinstance(outcome, asyncio.Future):
        outcome.cancel()  # a shield: the shared execution goes on for the others


def _write_now(websocket: Any, text: str, subscription: Subscription) -> None:
    """Write ``text`` without a task when the socket takes it at once (the usual
    case); otherwise finish in a task, holding ``subscription`` until then."""
    try:
        pending = run_until_blocked(websocket.ws.send_text(text))
    except Exception:  # the socket is gone; its handler ends the operation
        return
    if pending is None:
        return
    subscription.hold()
    task = asyncio.ensure_future(_finish(pending, subscription))
    _WRITES.add(task)
    task.add_done_callback(_WRITES.discard)


_WRITES: set[asyncio.Future[None]] = set()


class Blocked:
    """A coroutine that suspended, with what it waits for."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting_for: Any) -> None:
        self.coroutine = coroutine
        self.waiting_for = waiting_for


def run_until_blocked(coroutine: Coroutine[Any, Any, Any]) -> Blocked | None:
    """Run ``coroutine`` in this call until it finishes (None) or first suspends.

    What Python 3.12 calls an eager task: a socket write that needs no waiting
    costs no task and no trip through the event loop.
    """
    try:
        waiting_for = coroutine.send(None)
    except StopIteration:
        return None
    return Blocked(coroutine, waiting_for)


async def _finish(blocked: Blocked, subscription: Subscription) -> None:
    try:
        await _resume(blocked)
    except Exception:
        log.debug("a direct frame write failed", exc_info=True)
    finally:
        subscription.release()


async def _resume(blocked: Blocked) -> None:
    """Drive a suspended coroutine to its end the way a task would."""
    coroutine, waiting_for = blocked.coroutine, blocked.waiting_for
    try:
        while True:
            if waiting_for is None:
                await asyncio.sleep(0)
            else:
                with contextlib.suppress(Exception):  # the coroutine sees it itself
                    await waiting_for
            try:
                waiting_for = coroutine.send(None)
            except StopIteration:
                return
    except BaseException:
        coroutine.close()
        raise
