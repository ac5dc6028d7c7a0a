"""``regenerateChatTitle``: ask a daemon for a better title and wait for it.

Titles are written by a model, and only the daemon talks to models. The chat
is marked (the reference system's title lock: a reserved worker id, stale after
a minute) so a second request meanwhile is a CONFLICT; the request goes out on
the work channel and the mutation waits for the owner's ``title_changed`` (or
``title_failed``) before returning the chat as it is then.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from db.models import Chat
from db.vocabulary import BUSY_STATUSES, TITLE_LOCK_WORKER, ChatListEventKind
from events.channels import owner_channel
from events.payloads import ChatListChanged, TitleFailed
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.errors import conflict
from resolvers.usage_limits import require_spendable

LOCK_STALE = timedelta(minutes=1)
WAIT_S = 35.0


async def regenerate_chat_title(ctx: RequestContext, gid: str) -> Chat:
    own = await own_chat(ctx, gid)
    await require_spendable(own.owner_id, own.model_config_id)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    async with in_transaction() as conn:
        chat = await Chat.filter(id=own.id).using_db(conn).select_for_update().get()
        if chat.status in BUSY_STATUSES:
            raise conflict("the chat is running; regenerate its title when it is idle")
        held = chat.worker_id == TITLE_LOCK_WORKER and chat.heartbeat_at is not None
        if held and chat.heartbeat_at > now - LOCK_STALE:  # type: ignore[operator]
            raise conflict("a title is already being generated for this chat")
        chat.worker_id, chat.heartbeat_at = TITLE_LOCK_WORKER, now
        await chat.save(update_fields=["worker_id", "heartbeat_at"], using_db=conn)
    if ctx.events is None:
        return chat
    hub = ctx.events.hub
    async with hub.subscribe(owner_channel(chat.owner_id)) as subscription:  # type: ignore[attr-defined]
        await ctx.events.request_title(chat.id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT_S):
                async for event in subscription:
                    if _title_settled(event, chat.id):
                        break
    return await Chat.get(id=chat.id)


def _title_settled(event: object, chat_id: uuid.UUID) -> bool:
    """The daemon wrote the chat's new title, or gave up on it."""
    match event:
        case ChatListChanged(chat_id=changed, change=ChatListEventKind.TITLE_CHANGED):
            return changed == chat_id
        case TitleFailed(chat_id=failed):
            return failed == chat_id
    return False
