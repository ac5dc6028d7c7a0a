"""Per-operation dataloaders: one SQL query per kind of related row per request.

Built lazily on first use and discarded with the operation's context (and per
subscription event). Within one operation a cancelled load is dropped from the
cache, so it cannot poison a later load of the same key (aiodataloader keeps
every future it handed out, cancelled ones included).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from aiodataloader import DataLoader

from db.chat_files import FileMeta, file_metas, linked_files
from db.models import Chat, ChatQueuedMessage, User


class SafeLoader(DataLoader[Any, Any]):
    """A DataLoader that retries keys whose earlier load was cancelled or failed."""

    def load(self, key: Any) -> Any:
        cached = self._cache.get(self.get_cache_key(key))
        if cached is not None and cached.done() and (cached.cancelled() or cached.exception()):
            self.clear(key)
        return super().load(key)


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


async def _files(keys: list[uuid.UUID]) -> list[FileMeta | None]:
    rows = await file_metas(keys)
    return [rows.get(k) for k in keys]


async def _chat_files(keys: list[uuid.UUID]) -> list[list[FileMeta]]:
    grouped = await linked_files(keys)
    return [grouped.get(k, []) for k in keys]


class Loaders:
    def __init__(self) -> None:
        self.users: Any = SafeLoader(_users)
        self.chats: Any = SafeLoader(_chats)
        self.children: Any = SafeLoader(_children)
        self.queues: Any = SafeLoader(_queues)
        self.files: Any = SafeLoader(_files)
        self.chat_files: Any = SafeLoader(_chat_files)
