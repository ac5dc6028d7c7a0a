"""Announcing that a user's sessions ended, so every replica closes their sockets.

Revoking a token, logging out, disabling a user or changing their role is a
database write; open WebSockets authenticated before it would otherwise keep
their old identity. The write is announced on ``sessions`` (one channel for
every replica; each process holds one subscription to it) and each process
closes the sockets it serves for that user (or only that token).
"""

from __future__ import annotations

import logging

from events.channels import SESSIONS_CHANNEL
from events.hub import EventHub
from events.payloads import SessionEnd

log = logging.getLogger(__name__)


async def announce_session_end(hub: EventHub, end: SessionEnd) -> None:
    """Best effort: the write is committed either way, and an open socket checks
    its token again before each new operation, so a lost announcement only delays
    the close of an idle subscription."""
    try:
        await hub.publish(SESSIONS_CHANNEL, end)
    except Exception:
        log.warning("announcing a session end failed", exc_info=True)
