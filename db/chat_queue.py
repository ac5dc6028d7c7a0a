"""Moving the oldest queued message into a chat's history: the one rule the API
(interrupting an unclaimed turn) and the daemon (a turn ended) both apply."""

from __future__ import annotations

from typing import Any

from db.chat_files import json_file_ids, link_files
from db.models import Chat, ChatMessage, ChatQueuedMessage
from db.vocabulary import ChatStatus, MessageRole


async def move_to_history(
    conn: Any, queued: ChatQueuedMessage, warnings: list[str] | None = None
) -> ChatMessage:
    """The queued message becomes a user message of its chat (in one transaction).

    Its files are linked to the chat now, when it is sent; link warnings (the
    per-chat cap) are appended to ``warnings`` for callers that can show them.
    """
    chat_id = queued.chat_id  # type: ignore[attr-defined]
    linked = await link_files(conn, chat_id, json_file_ids(queued.parts))
    if warnings is not None:
        warnings.extend(linked)
    message = await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=queued.parts,
        created_by_id=queued.created_by_id,  # type: ignore[attr-defined]
        model_config_id=queued.model_config_id,
        using_db=conn,
    )
    await queued.delete(using_db=conn)
    return message


async def promote_queue_head(
    conn: Any, chat: Chat, warnings: list[str] | None = None
) -> ChatMessage | None:
    """Insert the queue head as a user message and make the chat PENDING.

    Runs inside the caller's transaction, with the chat row locked by it.
    """
    if chat.archived:
        return None
    head = await ChatQueuedMessage.filter(chat_id=chat.id).order_by("id").using_db(conn).first()
    if head is None:
        return None
    message = await move_to_history(conn, head, warnings)
    chat.status = ChatStatus.PENDING
    await chat.save(update_fields=["status"], using_db=conn)
    return message
