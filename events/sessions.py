"""Announcing that a user's sessions ended, so every replica closes their sockets.

Revoking a token, logging out, disabling a user or changing their role is a
database write; open WebSockets authenticated before it would otherwise keep
their old identity. The write is announced on ``sessions`` (one channel for
every replica; each process holds one subscription to it) and each process
closes the sockets it serves for that user (or only that token).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from events.hub import EventHub

log = logging.getLogger(__name__)

SESSIONS_CHANNEL = "sessions"
SESSION_ENDED = "session_ended"


@dataclass(frozen=True)
class SessionEnd:
    """Whose sockets must close: one token's, or (``token_id`` None) all the user's."""

    user_id: uuid.UUID
    token_id: uuid.UUID | None = None
    role_changed: bool = False

    def to_event(self) -> dict[str, Any]:
        return {
            "kind": SESSION_ENDED,
            "userId": str(self.user_id),
            "tokenId": None if self.token_id is None else str(self.token_id),
            "roleChanged": self.role_changed,
        }

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> SessionEnd | None:
        """None for anything else on the channel (a resync, a malformed event)."""
        if event.get("kind") != SESSION_ENDED:
            return None
        try:
            token = event.get("tokenId")
            return cls(
                user_id=uuid.UUID(str(event["userId"])),
                token_id=None if token is None else uuid.UUID(str(token)),
                role_changed=bool(event.get("roleChanged", False)),
            )
        except (KeyError, ValueError):
            log.warning("dropping a malformed session event")
            return None


async def announce_session_end(hub: EventHub, end: SessionEnd) -> None:
    """Best effort: the write is committed either way, and an open socket checks
    its token again before each new operation, so a lost announcement only delays
    the close of an idle subscription."""
    try:
        await hub.publish(SESSIONS_CHANNEL, end.to_event())
    except Exception:
        log.warning("announcing a session end failed", exc_info=True)
