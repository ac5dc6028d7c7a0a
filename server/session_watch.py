"""Open WebSockets follow their sessions: a socket ends (4403) when its session does.

A socket authenticates once, in ``connection_init``; without this module it would
keep that identity after its token was revoked, its user logged out, was
disabled or changed role. Two guards close that gap:

- every process keeps its authenticated sockets by user and holds ONE hub
  subscription to ``sessions`` (``events.sessions``); an announcement closes
  the sockets of that token (or of every token of that user) on every replica;
- each ``subscribe`` message checks the token again (one indexed lookup), so a
  missed announcement cannot let a revoked token or a disabled user start an
  operation. A hub resync (events may have been missed) re-checks every socket.

A socket whose token expires is ended when it does.

A role change closes the user's sockets too: a socket's viewer is read once, so
the client reconnects and is authorised with the new role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message,
    SubscribeMessage,
)

from events.channels import SESSIONS_CHANNEL
from events.hub import EventHub
from events.payloads import Event, Resync, SessionEnd
from events.sharing import use_lane
from resolvers.context import RequestContext
from resolvers.errors import ApiError
from resolvers.tokens import authenticate_hash
from server.frame_fanout import SocketLane

log = logging.getLogger(__name__)

# The code graphql-transport-ws uses for a refused connection_init: the client
# treats an ended session exactly like a token refused at the door.
SESSION_ENDED_CODE = 4403
_RETRY_S = 1.0


class SessionSocket(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """graphql-transport-ws that is watched while authenticated and re-checks its
    token before each operation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watched = False
        self.ended = False
        self.expiry: asyncio.TimerHandle | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        viewer = self.context.viewer
        return None if viewer is None or self.context.token is None else viewer.id

    @property
    def token_id(self) -> uuid.UUID | None:
        token = self.context.token
        return None if token is None else token.id

    async def send_message(self, message: Message) -> None:
        if message["type"] == "connection_ack" and not self._watched:
            # Watched before the ack leaves: no announcement after it is missed.
            self._watched = True
            await _watch_of(self.view).watch(self, _hub_of(self.context))
        await super().send_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.ended:
            return
        if self.connection_acknowledged and not await self.still_valid():
            await self.end()
            return
        if self.ended:  # ended by an announcement while the check ran
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[RequestContext, None]) -> None:
        # The operation's own task: live events may reach its socket directly.
        use_lane(SocketLane(self, operation))
        await super().run_operation(operation)

    async def shutdown(self) -> None:
        _watch_of(self.view).forget(self)
        await super().shutdown()

    async def still_valid(self) -> bool:
        """Whether the socket's token still stands for the same user with the same role
        and group grants."""
        token, viewer = self.context.token, self.context.viewer
        if token is None or viewer is None:
            return True  # anonymous: nothing to revoke
        try:
            user, _ = await authenticate_hash(token.token_hash)
        except ApiError:
            return False
        same_grants = user.granted_permissions == viewer.granted_permissions
        return user.id == viewer.id and user.role is viewer.role and same_grants

    async def end(self) -> None:
        """Stop every operation, then close with 4403; the client must authenticate again."""
        if self.ended:
            return
        self.ended = True
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(Exception):  # already closed by the client
            await self.websocket.close(SESSION_ENDED_CODE, "Session ended")


class SessionWatch:
    """One process's authenticated sockets by user, and its one ``sessions`` listener."""

    def __init__(self, *, ready_timeout_s: float = 5.0) -> None:
        self.ready_timeout_s = ready_timeout_s
        self._by_user: dict[uuid.UUID, set[SessionSocket]] = {}
        self._hub: EventHub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._settled: asyncio.Event | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> int:
        return sum(len(sockets) for sockets in self._by_user.values())

    async def watch(self, socket: SessionSocket, hub: EventHub | None) -> None:
        """Track an authenticated socket; the first one starts the listener and
        waits (bounded) until its subscription is confirmed."""
        user_id = socket.user_id
        if user_id is None:
            return
        self._by_user.setdefault(user_id, set()).add(socket)
        token = socket.context.token
        if token is not None and token.expires_at is not None:
            # An expiring token ends its sockets on time, with no announcement.
            left = (token.expires_at - datetime.now(UTC)).total_seconds()
            socket.expiry = asyncio.get_running_loop().call_later(
                max(left, 0.0), lambda: self._spawn(socket.end())
            )
        if hub is None or not hub.connected:
            return
        settled = self._ensure_listener(hub)
        if not settled.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ready_timeout_s):
                    await settled.wait()

    def forget(self, socket: SessionSocket) -> None:
        if socket.expiry is not None:
            socket.expiry.cancel()
        user_id = socket.user_id
        sockets = self._by_user.get(user_id) if user_id is not None else None
        if user_id is None or sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self._by_user[user_id]

    def _ensure_listener(self, hub: EventHub) -> asyncio.Event:
        running = self._listener is not None and not self._listener.done()
        if running and self._hub is hub and self._settled is not None:
            return self._settled
        self._hub, self._settled = hub, asyncio.Event()
        self._listener = asyncio.create_task(self._listen(hub, self._settled), name="session-watch")
        return self._settled

    async def _listen(self, hub: EventHub, settled: asyncio.Event) -> None:
        """Until the hub disconnects; after a lost subscription, re-check every socket."""
        first = True
        while hub.connected:
            try:
                async with hub.subscribe(SESSIONS_CHANNEL) as subscription:
                    settled.set()
                    if not first:
                        self._spawn(self._recheck_all())
                    first = False
                    async for event in subscription:
                        self._on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                settled.set()  # new sockets do not wait; their operations are checked
                first = False
                log.warning("session watch lost its subscription; retrying", exc_info=True)
                await asyncio.sleep(_RETRY_S)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Resync):
            self._spawn(self._recheck_all())
            return
        if not isinstance(event, SessionEnd):
            return
        end = event
        for socket in list(self._by_user.get(end.user_id, ())):
            if end.token_id is None or socket.token_id == end.token_id:
                self._spawn(socket.end())

    async def _recheck_all(self) -> None:
        for sockets in list(self._by_user.values()):
            for socket in list(sockets):
                try:
                    if not await socket.still_valid():
                        await socket.end()
                except Exception:
                    log.warning("re-checking a socket's session failed", exc_info=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)


class _Watched(Protocol):
    sessions: SessionWatch


def _watch_of(view: object) -> SessionWatch:
    return cast(_Watched, view).sessions


def _hub_of(context: RequestContext) -> EventHub | None:
    return context.events.hub if context.events is not None else None
