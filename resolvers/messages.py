"""Messages: the history connection, sending, editing and the queue."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from tortoise.transactions import in_transaction

from db.chat_files import link_files, part_file_ids
from db.chat_queue import move_to_history, promote_queue_head
from db.keyset import Page
from db.message_rows import MessageRow
from db.models import Chat, ChatMessage, ChatQueuedMessage
from db.parts import parts_to_json
from db.vocabulary import (
    BUSY_STATUSES,
    QUEUE_MAX,
    BusyBehavior,
    ChatStatus,
    ErrorCode,
    MessageRole,
    Visibility,
)
from events.announcer import ChatAnnouncer
from resolvers import global_id
from resolvers.chats import own_chat, publish
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, not_found
from resolvers.files import require_own_files
from resolvers.loaders import Loaders
from resolvers.message_input import PartInputLike, parse_content
from resolvers.model_configs import chat_model_config_key
from resolvers.pagination import PageArgs, history_page_args
from resolvers.permissions import require_viewer
from resolvers.usage_limits import require_spendable

_DIGITS = re.compile(r"[0-9]{1,19}")
BIGINT_MAX = 2**63 - 1


async def messages(chat: Chat, args: PageArgs, loaders: Loaders) -> Page[MessageRow]:
    """Visible history, oldest first within the page; the newest page by default.

    Through the request's loader: a list of chats asking for the same page of
    each (previews) costs one query, not one per chat."""
    key = (chat.id, history_page_args(args))
    return cast(Page[MessageRow], await loaders.message_pages.load(key))


@dataclass
class SendResult:
    chat: Chat
    message: ChatMessage | None = None
    queued_message: ChatQueuedMessage | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def queued(self) -> bool:
        return self.queued_message is not None


def _queue_full() -> ApiError:
    return ApiError(
        ErrorCode.QUEUE_FULL, f"Maximum {QUEUE_MAX} messages can be queued.", maximum=QUEUE_MAX
    )


async def send_message(
    ctx: RequestContext,
    chat_id: str,
    content: list[PartInputLike],
    *,
    busy_behavior: BusyBehavior = BusyBehavior.QUEUE,
    model_config_id: str | None = None,
    plan_mode: bool | None = None,
) -> SendResult:
    """Append to an idle chat (→ PENDING), or queue behind a busy one or its queue."""
    viewer = require_viewer(ctx)
    busy_behavior = BusyBehavior(busy_behavior)  # Strawberry passes input enums as values
    parts = parse_content(content)
    file_keys = part_file_ids(parts)
    await require_own_files(ctx, file_keys)
    # An enabled, non-deleted config, or None to keep the chat's.
    model_key = await chat_model_config_key(model_config_id, use_default=False)
    own = await own_chat(ctx, chat_id, "chatId")
    if own.archived:
        raise bad_input("chatId", "the chat is archived; unarchive it first")
    await require_spendable(viewer.id, model_key or own.model_config_id)
    result: SendResult
    interrupted = touched_queue = False
    async with in_transaction() as conn:
        chat = await Chat.filter(id=own.id).using_db(conn).select_for_update().get()
        waiting = await ChatQueuedMessage.filter(chat_id=chat.id).using_db(conn).count()
        if model_key is not None:
            chat.model_config_id = model_key
            await chat.save(update_fields=["model_config_id"], using_db=conn)
        if plan_mode is not None and plan_mode != chat.plan_mode:
            chat.plan_mode = plan_mode  # persistent, like updateChat(planMode)
            await chat.save(update_fields=["plan_mode"], using_db=conn)
        if chat.status in BUSY_STATUSES or waiting:
            if waiting >= QUEUE_MAX:
                raise _queue_full()
            queued = await ChatQueuedMessage.create(
                chat_id=chat.id,
                parts=parts_to_json(parts),
                created_by_id=viewer.id,
                model_config_id=model_key,
                using_db=conn,
            )
            result = SendResult(chat=chat, queued_message=queued)
            touched_queue = True
            if busy_behavior is BusyBehavior.INTERRUPT and chat.status is ChatStatus.RUNNING:
                # As interruptChat: its worker stops the run, then the queue head runs.
                interrupted = True
                chat.status = ChatStatus.INTERRUPTING
                await chat.save(update_fields=["status"], using_db=conn)
            elif busy_behavior is BusyBehavior.INTERRUPT and chat.status is ChatStatus.PENDING:
                interrupted = True
                claimed = chat.worker_id is not None
                chat.status, chat.worker_id = ChatStatus.WAITING, None
                await chat.save(update_fields=["status", "worker_id"], using_db=conn)
                if not claimed:  # nobody to hand over: the queue head runs now
                    result.message = await promote_queue_head(conn, chat, result.warnings)
                    if (
                        result.message is not None
                        and not await ChatQueuedMessage.filter(id=queued.id).using_db(conn).exists()
                    ):
                        result.queued_message = None  # it went straight into the history
        else:
            message = await ChatMessage.create(
                chat_id=chat.id,
                role=MessageRole.USER,
                parts=parts_to_json(parts),
                created_by_id=viewer.id,
                model_config_id=model_key or chat.model_config_id,
                using_db=conn,
            )
            chat.status = ChatStatus.PENDING
            await chat.save(update_fields=["status"], using_db=conn)
            warnings = await link_files(conn, chat.id, file_keys)
            result = SendResult(chat=chat, message=message, warnings=warnings)
    await chat.refresh_from_db(fields=["updated_at"])

    async def announce(events: ChatAnnouncer) -> None:
        if touched_queue:
            await events.queue(chat.id)
        if interrupted and chat.status is not ChatStatus.INTERRUPTING:
            await events.status(viewer.id, chat.id, ChatStatus.WAITING)
        if result.message is not None:
            await events.message(chat.id, result.message.id)
        if result.message is not None or interrupted:
            await events.status(viewer.id, chat.id, chat.status)

    await publish(ctx, announce)
    return result


async def edit_message(
    ctx: RequestContext, message_id: str, content: list[PartInputLike]
) -> SendResult:
    """Replace a user message: it and everything after it leave the history, the
    queue is cleared and the turn runs again from the replacement."""
    viewer = require_viewer(ctx)
    parts = parse_content(content)
    file_keys = part_file_ids(parts)
    await require_own_files(ctx, file_keys)
    key = message_key(message_id, "messageId")
    original = await ChatMessage.filter(id=key, deleted=False, chat__owner_id=viewer.id).first()
    if original is None:
        raise not_found("message")
    if original.role is not MessageRole.USER:
        raise bad_input("messageId", "only user messages can be edited")
    await require_spendable(viewer.id, original.model_config_id, chat_id=original.chat_id)  # type: ignore[attr-defined]
    async with in_transaction() as conn:
        chat = (
            await Chat.filter(id=original.chat_id)  # type: ignore[attr-defined]
            .using_db(conn)
            .select_for_update()
            .get()
        )
        await (
            ChatMessage.filter(chat_id=chat.id, id__gte=original.id)
            .using_db(conn)
            .update(deleted=True)
        )
        await ChatQueuedMessage.filter(chat_id=chat.id).using_db(conn).delete()
        replacement = await ChatMessage.create(
            chat_id=chat.id,
            role=MessageRole.USER,
            parts=parts_to_json(parts),
            created_by_id=viewer.id,
            model_config_id=original.model_config_id,
            using_db=conn,
        )
        chat.status, chat.worker_id = ChatStatus.PENDING, None
        await chat.save(update_fields=["status", "worker_id"], using_db=conn)
        warnings = await link_files(conn, chat.id, file_keys)

    await chat.refresh_from_db(fields=["updated_at"])

    async def announce(events: ChatAnnouncer) -> None:
        await events.history_reset(chat.id)
        await events.queue(chat.id)
        await events.status(viewer.id, chat.id, ChatStatus.PENDING)

    await publish(ctx, announce)
    return SendResult(chat=chat, message=replacement, warnings=warnings)


def _bigint_key(gid: str, type_name: str, field_name: str) -> int:
    raw = global_id.decode_as(gid, type_name, field=field_name)
    if not _DIGITS.fullmatch(raw) or int(raw) > BIGINT_MAX:
        raise bad_input(field_name, f"not a valid {type_name} id")
    return int(raw)


def message_key(gid: str, field_name: str = "id") -> int:
    return _bigint_key(gid, "Message", field_name)


def queued_key(gid: str, field_name: str = "id") -> int:
    return _bigint_key(gid, "QueuedMessage", field_name)


async def _own_queued(ctx: RequestContext, gid: str) -> ChatQueuedMessage:
    viewer = require_viewer(ctx)
    row = await ChatQueuedMessage.filter(id=queued_key(gid), chat__owner_id=viewer.id).first()
    if row is None:
        raise not_found("queued message")
    return row


async def promote_queued_message(ctx: RequestContext, gid: str) -> SendResult:
    """Move a queued message into the history now; an idle chat starts its turn."""
    viewer = require_viewer(ctx)
    queued = await _own_queued(ctx, gid)
    await require_spendable(viewer.id, queued.model_config_id, chat_id=queued.chat_id)  # type: ignore[attr-defined]
    async with in_transaction() as conn:
        chat = (
            await Chat.filter(id=queued.chat_id)  # type: ignore[attr-defined]
            .using_db(conn)
            .select_for_update()
            .get()
        )
        row = await ChatQueuedMessage.filter(id=queued.id).using_db(conn).first()
        if row is None:  # promoted or deleted meanwhile
            raise not_found("queued message")
        warnings: list[str] = []
        message = await move_to_history(conn, row, warnings)
        started = chat.status not in BUSY_STATUSES
        if started:
            chat.status = ChatStatus.PENDING
            await chat.save(update_fields=["status"], using_db=conn)

    await chat.refresh_from_db(fields=["updated_at"])

    async def announce(events: ChatAnnouncer) -> None:
        await events.queue(chat.id)
        await events.message(chat.id, message.id)
        if started:
            await events.status(viewer.id, chat.id, ChatStatus.PENDING)

    await publish(ctx, announce)
    return SendResult(chat=chat, message=message, warnings=warnings)


async def delete_queued_message(ctx: RequestContext, gid: str) -> Chat:
    queued = await _own_queued(ctx, gid)
    await ChatQueuedMessage.filter(id=queued.id).delete()
    chat = await Chat.get(id=queued.chat_id)  # type: ignore[attr-defined]

    async def announce(events: ChatAnnouncer) -> None:
        await events.queue(chat.id)

    await publish(ctx, announce)
    return chat


async def messages_by_ids(ctx: RequestContext, keys: list[int]) -> dict[int, ChatMessage]:
    """Node lookups: visible messages of the viewer's chats."""
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    rows = ChatMessage.filter(id__in=keys, deleted=False, chat__owner_id=ctx.viewer.id)
    return {m.id: m for m in await rows.exclude(visibility=Visibility.MODEL)}


async def queued_by_ids(ctx: RequestContext, keys: list[int]) -> dict[int, ChatQueuedMessage]:
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    rows = await ChatQueuedMessage.filter(id__in=keys, chat__owner_id=ctx.viewer.id)
    return {q.id: q for q in rows}
