"""How a chat is settled when its run stops: finished (WAITING, REQUIRES_ACTION or
ERROR, then the queue head runs), interrupted, or released without its run.
"""

from __future__ import annotations

import uuid
from typing import Any

from tortoise.transactions import in_transaction

from daemon.turn import Turn, owns, publish
from db.chat_queue import promote_queue_head
from db.models import Chat, ChatMessage
from db.vocabulary import ChatStatus
from events.announcer import ChatAnnouncer
from events.payloads import ChatErrorInfo


async def settle_interrupted(turn: Turn) -> None:
    """The interrupted run has stopped: an INTERRUPTING chat it still holds becomes
    WAITING (announced), and unless someone has claimed the chat since, its queue
    head (e.g. the message sent with INTERRUPT) runs next."""
    stopped = False
    async with in_transaction() as conn:
        chat = await Chat.filter(id=turn.chat_id).using_db(conn).select_for_update().first()
        if chat is None:
            return
        if chat.status is ChatStatus.INTERRUPTING and owns(turn, chat):
            chat.status, chat.worker_id = ChatStatus.WAITING, None
            await chat.save(update_fields=["status", "worker_id"], using_db=conn)
            stopped = True
        elif chat.status is not ChatStatus.WAITING or chat.worker_id is not None:
            return
        promoted = await promote_queue_head(conn, chat)
    if stopped:
        mine = str(turn.worker_id)
        await publish(
            turn,
            "status",
            lambda a: a.status(turn.owner_id, turn.chat_id, ChatStatus.WAITING, mine),
        )
    if promoted is not None:
        message_id = promoted.id
        await publish(turn, "message", lambda a: a.message(turn.chat_id, message_id))
        await publish(turn, "queue", lambda a: a.queue(turn.chat_id))
        await publish(
            turn, "status", lambda a: a.status(turn.owner_id, turn.chat_id, ChatStatus.PENDING)
        )


async def promote_released(events: ChatAnnouncer, owner_id: uuid.UUID, chat_id: uuid.UUID) -> None:
    """A chat released to WAITING without its run (its worker is gone): the queue
    head runs next, as after any interrupt."""
    async with in_transaction() as conn:
        chat = await Chat.filter(id=chat_id).using_db(conn).select_for_update().first()
        if chat is None or chat.status is not ChatStatus.WAITING or chat.worker_id is not None:
            return
        promoted = await promote_queue_head(conn, chat)
    if promoted is not None:
        await events.message(chat_id, promoted.id)
        await events.queue(chat_id)
        await events.status(owner_id, chat_id, ChatStatus.PENDING.value)


def _outcome(turn: Turn, chat: Chat, error: dict[str, Any] | None) -> ChatStatus:
    """WAITING, ERROR, or REQUIRES_ACTION when a question waits for the user; a chat
    being interrupted just stops (WAITING), whatever the run ended with."""
    if chat.status is ChatStatus.INTERRUPTING:
        return ChatStatus.WAITING
    if error is not None:
        return ChatStatus.ERROR
    return ChatStatus.REQUIRES_ACTION if turn.awaiting_user else ChatStatus.WAITING


async def finish(turn: Turn, error: dict[str, Any] | None) -> None:
    """WAITING, REQUIRES_ACTION or ERROR (with lastError); then the queue head runs."""
    promoted: ChatMessage | None = None
    async with in_transaction() as conn:
        chat = await Chat.filter(id=turn.chat_id).using_db(conn).select_for_update().first()
        if chat is None or not owns(turn, chat):
            return  # interrupted, archived or taken over: its new owner decides
        chat.status = _outcome(turn, chat, error)
        if chat.status is not ChatStatus.ERROR:
            error = None
        chat.last_error = error
        chat.worker_id = None
        await chat.save(update_fields=["status", "last_error", "worker_id"], using_db=conn)
        if error is None:
            promoted = await promote_queue_head(conn, chat)
    # Released: what follows announces it, and an announcement racing in (an
    # interrupt that came too late) must not cancel that half-way.
    turn.finished = True
    if error is not None:
        failure = ChatErrorInfo.from_json(error)
        await publish(turn, "failed", lambda a: a.failed(turn.chat_id, failure))
    if promoted is not None:
        message_id = promoted.id
        await publish(turn, "message", lambda a: a.message(turn.chat_id, message_id))
        await publish(turn, "queue", lambda a: a.queue(turn.chat_id))
    # Signed with our worker id: our own interrupt watcher must not react to it.
    status, mine = chat.status, str(turn.worker_id)
    await publish(turn, "status", lambda a: a.status(turn.owner_id, turn.chat_id, status, mine))
