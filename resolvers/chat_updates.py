"""Changing a chat: title, labels, pins, archive, modes; interrupting; reading."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from db.chat_queue import promote_queue_head
from db.models import Chat, ChatMessage
from db.titles import clean_title
from db.vocabulary import BUSY_STATUSES, TITLE_MAX, UNPINNED_RANK, ChatStatus
from events.announcer import ChatAnnouncer
from resolvers import debug_settings
from resolvers.chats import check_labels, own_chat, publish
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.workspaces import own_workspace_key

_UNSET: Any = object()
# A question waiting for the user (REQUIRES_ACTION) has no run to stop: their next
# message answers it, whatever it says.
_INTERRUPTIBLE = frozenset({ChatStatus.RUNNING, ChatStatus.PENDING})


@dataclass
class ChatChanges:
    """What updateChat was asked to change; ``_UNSET`` fields stay as they are."""

    title: Any = _UNSET
    archived: Any = _UNSET
    pin_order: Any = _UNSET
    labels: Any = _UNSET
    plan_mode: Any = _UNSET
    workspace_id: Any = _UNSET
    debug_logging_override: Any = _UNSET

    def only_debug_override(self) -> bool:
        """An admin may change this one field on anyone's chat (nothing else)."""
        others = (self.title, self.archived, self.pin_order, self.labels, self.plan_mode)
        return self.debug_logging_override is not _UNSET and all(
            value is _UNSET for value in (*others, self.workspace_id)
        )


async def _lock(conn: Any, chat_id: uuid.UUID) -> Chat:
    chat = await Chat.filter(id=chat_id).using_db(conn).select_for_update().get()
    return chat


async def _pin(conn: Any, chat: Chat, wanted: int) -> None:
    """0 unpins; a new pin goes last; a pinned chat moves to the clamped position."""
    await conn.execute_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('pins:' || $1::text, 0))",
        [str(chat.owner_id)],  # type: ignore[attr-defined]
    )
    pinned = (
        await Chat.filter(owner_id=chat.owner_id, parent_id=None, pin_order__gt=0)  # type: ignore[attr-defined]
        .exclude(id=chat.id)
        .order_by("pin_order")
        .using_db(conn)
    )
    if wanted == 0:
        order = pinned
    elif chat.pin_order == 0:
        order = [*pinned, chat]
    else:
        position = min(max(wanted, 1), len(pinned) + 1)
        order = [*pinned[: position - 1], chat, *pinned[position - 1 :]]
    if wanted == 0:
        chat.pin_order, chat.list_rank = 0, UNPINNED_RANK
        await chat.save(update_fields=["pin_order", "list_rank"], using_db=conn)
    for index, row in enumerate(order, start=1):
        if row.pin_order != index or row is chat:
            row.pin_order = row.list_rank = index
            await row.save(update_fields=["pin_order", "list_rank"], using_db=conn)


async def _archive(conn: Any, chat: Chat, archived: bool) -> tuple[list[Chat], list[Chat]]:
    """Archive the whole family; unarchive a root's family or a single child.

    Returns the family and the chats whose running turn was stopped (→ WAITING).
    """
    if chat.archived == archived:
        state = "archived" if archived else "not archived"
        raise bad_input("archived", f"the chat is already {state}")
    if not archived and chat.parent_id is not None:  # type: ignore[attr-defined]
        parent = await Chat.filter(id=chat.parent_id).using_db(conn).get()  # type: ignore[attr-defined]
        if parent.archived:
            raise bad_input("archived", "unarchive the parent chat first")
        family = [chat]
    else:
        family = await Chat.filter(root_id=chat.root_id).using_db(conn).select_for_update()
    stopped: list[Chat] = []
    for row in family:
        row.archived = archived
        if archived:
            row.pin_order, row.list_rank = 0, UNPINNED_RANK
            if row.status in BUSY_STATUSES:
                row.status = ChatStatus.WAITING
                row.worker_id = None
                stopped.append(row)
        await row.save(
            update_fields=["archived", "pin_order", "list_rank", "status", "worker_id"],
            using_db=conn,
        )
    return family, stopped


async def update_chat(ctx: RequestContext, gid: str, changes: ChatChanges) -> Chat:
    if changes.only_debug_override():
        own = await debug_settings.overridable_chat(ctx, gid)
    else:
        own = await own_chat(ctx, gid)
    list_events: list[tuple[uuid.UUID, str]] = []
    status_changed: list[Chat] = []
    async with in_transaction() as conn:
        chat = await _lock(conn, own.id)
        fields: list[str] = []
        if changes.title is not _UNSET:
            title = clean_title(changes.title or "")
            if not 1 <= len(title) <= TITLE_MAX:
                raise bad_input("title", f"must be 1..{TITLE_MAX} characters after trimming")
            if title != chat.title:
                chat.title = title
                fields.append("title")
                list_events.append((chat.id, "title_changed"))
        if changes.labels is not _UNSET:
            chat.labels = check_labels(changes.labels)
            fields.append("labels")
        if changes.plan_mode is not _UNSET:
            if changes.plan_mode is None:
                raise bad_input("planMode", "must be true or false")
            chat.plan_mode = bool(changes.plan_mode)
            fields.append("plan_mode")
        if changes.workspace_id is not _UNSET:
            chat.workspace_id = (
                await own_workspace_key(ctx, changes.workspace_id) if changes.workspace_id else None
            )
            fields.append("workspace_id")
        if changes.debug_logging_override is not _UNSET:
            value = changes.debug_logging_override
            chat.debug_logging_override = await debug_settings.check_override(ctx, chat, value)
            fields.append("debug_logging_override")
        if fields:
            await chat.save(update_fields=fields, using_db=conn)
        if changes.archived is not _UNSET:
            if changes.archived is None:
                raise bad_input("archived", "must be true or false")
            family, stopped = await _archive(conn, chat, bool(changes.archived))
            kind = "archived" if changes.archived else "unarchived"
            list_events.extend((row.id, kind) for row in family)
            status_changed.extend(stopped)
            chat = next(r for r in family if r.id == chat.id)
        if changes.pin_order is not _UNSET:
            wanted = changes.pin_order
            if wanted is None or wanted < 0:
                raise bad_input("pinOrder", "must be zero (unpin) or more")
            if wanted > 0 and chat.archived:
                raise bad_input("pinOrder", "an archived chat cannot be pinned")
            if chat.parent_id is not None and wanted > 0:  # type: ignore[attr-defined]
                raise bad_input("pinOrder", "only top-level chats can be pinned")
            await _pin(conn, chat, wanted)
    owner = chat.owner_id  # type: ignore[attr-defined]

    async def announce(events: ChatAnnouncer) -> None:
        for chat_id, kind in list_events:
            await events.list_change(owner, chat_id, kind)
        for row in status_changed:
            await events.status(owner, row.id, row.status)

    await publish(ctx, announce)
    return chat


async def interrupt_chat(ctx: RequestContext, gid: str) -> Chat:
    """RUNNING → INTERRUPTING: the worker sees it, cancels the turn and only then
    makes the chat WAITING. A chat nobody had claimed yet (PENDING) has nothing to
    stop: it is WAITING at once and moves on to its next queued message.
    """
    own = await own_chat(ctx, gid)
    promoted: ChatMessage | None = None
    async with in_transaction() as conn:
        chat = await _lock(conn, own.id)
        if chat.status not in _INTERRUPTIBLE:
            return chat  # idle, failed, or already being interrupted
        if chat.status is ChatStatus.RUNNING:  # a run is under way: its worker stops it
            chat.status = ChatStatus.INTERRUPTING
            await chat.save(update_fields=["status"], using_db=conn)
        else:
            chat.status = ChatStatus.WAITING
            await chat.save(update_fields=["status"], using_db=conn)
            promoted = await promote_queue_head(conn, chat)
    if promoted is not None:
        await chat.refresh_from_db(fields=["updated_at"])
    owner = chat.owner_id  # type: ignore[attr-defined]
    announced = ChatStatus.WAITING if promoted is not None else chat.status

    async def announce(events: ChatAnnouncer) -> None:
        await events.status(owner, chat.id, announced)
        if promoted is not None:
            await events.message(chat.id, promoted.id)
            await events.queue(chat.id)
            await events.status(owner, chat.id, ChatStatus.PENDING)

    await publish(ctx, announce)
    return chat


async def mark_chat_read(ctx: RequestContext, gid: str) -> Chat:
    """Moves the read cursor to the latest assistant message."""
    chat = await own_chat(ctx, gid)
    if chat.has_unread:
        await Chat.filter(id=chat.id).update(last_read_message_id=chat.last_assistant_message_id)
        chat.last_read_message_id = chat.last_assistant_message_id
    return chat
