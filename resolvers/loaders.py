"""Per-operation dataloaders: one SQL query per kind of related row per request.

Built lazily on first use and discarded with the operation's context (and per
subscription event). Within one operation a cancelled load is dropped from the
cache, so it cannot poison a later load of the same key (aiodataloader keeps
every future it handed out, cancelled ones included).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiodataloader import DataLoader

from db.chat_files import FileMeta, file_metas, linked_files
from db.debug_runs import steps_of_runs
from db.keyset import InvalidCursor
from db.message_rows import message_page, message_pages
from db.models import (
    Chat,
    ChatDiffStatus,
    ChatQueuedMessage,
    User,
    Workspace,
    WorkspaceGitSnapshot,
    WorkspaceTemplate,
)
from db.raw_sql import fetch, model_from
from db.vocabulary import DEFAULT_PAGE_SIZE, WorkspaceStatus
from resolvers.dataloader_compat import cached_future
from resolvers.errors import bad_input
from resolvers.pagination import PageArgs


class SafeLoader(DataLoader[Any, Any]):
    """A DataLoader that retries keys whose earlier load was cancelled or failed.

    Callers get a shield of the cached future: cancelling one caller (a client
    gone, a timeout) must not cancel the future other callers of the same key
    are awaiting, or every one of them would raise CancelledError.
    """

    def load(self, key: Any) -> Any:
        cached = cached_future(self, key)
        if cached is not None and cached.done() and (cached.cancelled() or cached.exception()):
            self.clear(key)
        return asyncio.shield(super().load(key))


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


async def _diff_statuses(keys: list[uuid.UUID]) -> list[ChatDiffStatus | None]:
    rows = {r.chat_id: r for r in await ChatDiffStatus.filter(chat_id__in=keys)}
    return [rows.get(k) for k in keys]


@dataclass(frozen=True)
class WorkspaceGit:
    """A workspace's state and the git watcher's latest snapshot of it (if any)."""

    workspace_id: uuid.UUID
    owner_id: uuid.UUID
    status: WorkspaceStatus
    snapshot: WorkspaceGitSnapshot | None


_WORKSPACE_GIT_SQL = """
SELECT w.id, w.owner_id, w.status,
       s.workspace_id AS s_workspace_id, s.repositories AS s_repositories,
       s.scanned_at AS s_scanned_at
FROM workspaces w LEFT JOIN workspace_git_snapshots s ON s.workspace_id = w.id
WHERE w.id = ANY($1::uuid[])
"""


async def _git_snapshots(keys: list[uuid.UUID]) -> list[WorkspaceGit | None]:
    """By workspace id; None when the workspace is gone. One query for both rows."""
    found: dict[uuid.UUID, WorkspaceGit] = {}
    for row in await fetch(_WORKSPACE_GIT_SQL, keys):
        snapshot = None
        if row["s_workspace_id"] is not None:
            snapshot = model_from(WorkspaceGitSnapshot, row, prefix="s_")
        found[row["id"]] = WorkspaceGit(
            row["id"], row["owner_id"], WorkspaceStatus(row["status"]), snapshot
        )
    return [found.get(k) for k in keys]


async def _workspaces(keys: list[uuid.UUID]) -> list[Workspace | None]:
    rows = {w.id: w for w in await Workspace.filter(id__in=keys)}
    return [rows.get(k) for k in keys]


async def _workspace_templates(keys: list[uuid.UUID]) -> list[WorkspaceTemplate | None]:
    rows = {t.id: t for t in await WorkspaceTemplate.filter(id__in=keys)}
    return [rows.get(k) for k in keys]


async def _message_pages(keys: list[tuple[uuid.UUID, PageArgs]]) -> list[Any]:
    """One query per distinct page arguments (a lone chat uses the plain
    per-chat statement); a bad cursor fails just the keys that carry it."""
    wanted: dict[PageArgs, list[uuid.UUID]] = {}
    for chat_id, args in keys:
        wanted.setdefault(args, []).append(chat_id)
    found: dict[tuple[uuid.UUID, PageArgs], Any] = {}
    for args, chat_ids in wanted.items():
        pages: dict[uuid.UUID, Any]
        try:
            if len(chat_ids) == 1:
                pages = {
                    chat_ids[0]: await message_page(
                        chat_ids[0],
                        first=args.first,
                        after=args.after,
                        last=args.last,
                        before=args.before,
                        default_size=DEFAULT_PAGE_SIZE,
                    )
                }
            else:
                pages = await message_pages(
                    chat_ids,
                    first=args.first,
                    after=args.after,
                    last=args.last,
                    before=args.before,
                    default_size=DEFAULT_PAGE_SIZE,
                )
        except InvalidCursor:
            error = bad_input("after" if args.after else "before", "not a valid cursor")
            pages = dict.fromkeys(chat_ids, error)
        found.update(((chat_id, args), pages[chat_id]) for chat_id in chat_ids)
    return [found[key] for key in keys]


class Loaders:
    def __init__(self) -> None:
        self.users: Any = SafeLoader(_users)
        self.chats: Any = SafeLoader(_chats)
        self.children: Any = SafeLoader(_children)
        self.queues: Any = SafeLoader(_queues)
        self.files: Any = SafeLoader(_files)
        self.chat_files: Any = SafeLoader(_chat_files)
        self.message_pages: Any = SafeLoader(_message_pages)
        self.diff_statuses: Any = SafeLoader(_diff_statuses)
        self.git_snapshots: Any = SafeLoader(_git_snapshots)
        self.workspaces: Any = SafeLoader(_workspaces)
        self.workspace_templates: Any = SafeLoader(_workspace_templates)
        self.debug_steps: Any = SafeLoader(steps_of_runs)
