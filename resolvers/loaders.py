"""Per-operation dataloaders: one SQL query per kind of related row per request.

Built lazily on first use and discarded with the operation's context, so a
cancelled load never poisons a later request (aiodataloader keeps failed futures).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from aiodataloader import DataLoader

from db.models import Chat, ChatQueuedMessage, User


async def _users(keys: list[uuid.UUID]) -> list[User | None]:
    rows = {u.id: u for u in await User.filter(id__in=keys)}
    return [rows.get(k) for k in keys]


async def _chats(keys: list[uuid.UUID]) -> list[Chat | None]:
    rows = {c.id: c for c in await Chat.filter(id__in=keys)}
    return [rows.get(k) for k in keys]


async def _children(keys: list[uuid.UUID]) -> list[list[Chat]]:
    grouped: dict[uuid.UUID, list[Chat]] = defaultdict(list)
    for row in await Chat.filter(parent_id__in=keys).order_by("created_at", "id"):
        grouped[row.parent_id].append(row)  # type: ignore[attr-defined]
    return [grouped.get(k, []) for k in keys]


async def _queues(keys: list[uuid.UUID]) -> list[list[ChatQueuedMessage]]:
    grouped: dict[uuid.UUID, list[ChatQueuedMessage]] = defaultdict(list)
    for row in await ChatQueuedMessage.filter(chat_id__in=keys).order_by("id"):
        grouped[row.chat_id].append(row)  # type: ignore[attr-defined]
    return [grouped.get(k, []) for k in keys]


class Loaders:
    def __init__(self) -> None:
        self.users: Any = DataLoader(_users)
        self.chats: Any = DataLoader(_chats)
        self.children: Any = DataLoader(_children)
        self.queues: Any = DataLoader(_queues)
