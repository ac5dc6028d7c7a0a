"""Verified tokens, kept per process for a few seconds so a request costs no token SELECT.

Every request presents a token; checking it is one indexed SELECT, which on
the hottest queries (a message page, ``viewer``) was a third to all of their
SQL. A token verified here is trusted again, without the database, for
``TTL_S`` seconds, and only while the cache hears every session end:

- every write that ends a session (revoke, logout, disable, role or grant
  change) evicts here at once, in the writing process, and announces it on
  ``sessions``; each process's listener evicts on every replica. A lost
  subscription, or a hub resync (events may have been missed), empties the
  cache, and nothing is served from it until the listener is back;
- a read that raced an eviction is not stored (the eviction ``generation``);
- expiry and the token's scope are checked on every hit, and the bound on
  entries keeps a flood of valid tokens from growing memory.

A write behind the server's back (SQL by hand) is seen within ``TTL_S``.
Sockets re-check their token in the database before each operation anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from db.models import ApiToken, User
from events.channels import SESSIONS_CHANNEL
from events.hub import EventHub
from events.payloads import Event, Resync, SessionEnd

log = logging.getLogger(__name__)

TTL_S = 5.0
MAX_ENTRIES = 10_000
_RETRY_S = 1.0


@dataclass(slots=True)
class _Entry:
    user: User
    token: ApiToken
    verified_at: float


class TokenCache:
    """Token hash → the verified (user, token), for ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.hits = 0
        self.generation = 0
        """Bumped by every eviction: a read begun before one is not stored."""
        self._entries: dict[str, _Entry] = {}
        self._listeners: dict[EventHub, asyncio.Task[None]] = {}
        self._live: set[EventHub] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def serving(self) -> bool:
        """Whether hits are served: caching is on (``ttl_s``), some hub is attached
        and every attached one is subscribed to ``sessions`` (else an end could go
        unheard)."""
        heard = bool(self._listeners) and len(self._live) == len(self._listeners)
        return heard and self.ttl_s > 0

    def get(self, token_hash: str) -> tuple[User, ApiToken] | None:
        entry = self._entries.get(token_hash)
        if entry is None or not self.serving:
            return None
        if time.monotonic() - entry.verified_at > self.ttl_s or _expired(entry.token):
            del self._entries[token_hash]
            return None
        self.hits += 1
        return entry.user, entry.token

    def put(self, token_hash: str, user: User, token: ApiToken, generation: int) -> None:
        if generation != self.generation or not self.serving:
            return
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: the oldest verification goes first.
            del self._entries[next(iter(self._entries))]
        self._entries[token_hash] = _Entry(user, token, time.monotonic())

    def evict(self, user_id: uuid.UUID, token_id: uuid.UUID | None = None) -> None:
        """Forget one token (``token_id``) or every token of the user."""
        self.generation += 1
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.user.id == user_id and (token_id is None or entry.token.id == token_id)
        ]
        for key in stale:
            del self._entries[key]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def attach(self, hub: EventHub) -> None:
        """Listen to ``hub``'s session ends; hits are served once the listener is
        subscribed (waited for, bounded, so the first requests already benefit)."""
        if hub in self._listeners:
            return
        subscribed = asyncio.Event()
        self._listeners[hub] = asyncio.create_task(
            self._listen(hub, subscribed), name="token-cache-sessions"
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await subscribed.wait()

    async def detach(self, hub: EventHub) -> None:
        task = self._listeners.pop(hub, None)
        self._live.discard(hub)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._listeners:
            self.clear()

    async def _listen(self, hub: EventHub, subscribed: asyncio.Event) -> None:
        while hub.connected:
            try:
                async with hub.subscribe(SESSIONS_CHANNEL) as subscription:
                    self._live.add(hub)
                    subscribed.set()
                    async for event in subscription:
                        self._on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("token cache lost its sessions subscription; retrying", exc_info=True)
            finally:
                self._live.discard(hub)
                self.clear()
            subscribed.set()
            await asyncio.sleep(_RETRY_S)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Resync):
            self.clear()
        elif isinstance(event, SessionEnd):
            self.evict(event.user_id, event.token_id)


def _expired(token: ApiToken) -> bool:
    return token.expires_at is not None and token.expires_at <= datetime.now(UTC)


TOKENS = TokenCache()
"""This process's cache: the app attaches its hub at startup (``server.app``)."""
