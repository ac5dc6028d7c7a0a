"""Channel names: who listens where.

A chat's channel carries what its live view needs (status, durable messages,
queue, history resets, the running step's deltas, retries, failures); an
owner's channel carries what their chat list needs; a workspace's git channel
its repositories' changes. Daemons listen on ``work``, every replica on
``sessions`` (sockets to close) and ``config`` (caches to drop).
"""

from __future__ import annotations

import uuid

from db.vocabulary import CONFIG_CHANNEL

__all__ = [
    "CONFIG_CHANNEL",
    "SESSIONS_CHANNEL",
    "WORK_CHANNEL",
    "chat_channel",
    "debug_channel",
    "git_channel",
    "owner_channel",
]

# Daemons listen here: a chat became PENDING, look for work now (not at the poll).
WORK_CHANNEL = "work"
# Every replica listens here: a user's sessions ended, close their sockets.
SESSIONS_CHANNEL = "sessions"


def chat_channel(chat_id: uuid.UUID | str) -> str:
    return f"chat:{chat_id}"


def owner_channel(owner_id: uuid.UUID | str) -> str:
    return f"owner:{owner_id}"


def debug_channel(chat_id: uuid.UUID | str) -> str:
    """A chat's debug runs as they start, record steps and finish (``debugRuns``):
    apart from ``chat:`` so chat streams never carry them."""
    return f"debug:{chat_id}"


def git_channel(workspace_id: uuid.UUID | str) -> str:
    """A workspace's git snapshots (the watcher's changes, by repository root)."""
    return f"git:{workspace_id}"
