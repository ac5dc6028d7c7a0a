"""Owner-wide live streams: ``chatListEvents`` and ``titleChanges``.

Both follow the owner's channel; each event carries a chat id and the chat is
read from the database per event (with the owner check), so a client always
gets current rows and never another user's chat. Subscribers of one owner
channel share that read and the rows made from an event (``events.sharing``).
A ``ChatListChanged`` event's ``change`` is the list event's kind.

When the hub says events were lost (this subscriber's queue overflowed, or the
broadcast backend reconnected), neither stream carries on as if nothing
happened: the list sends RESYNC (the client refetches its list), titles send a
``Resync`` and, for one chat, its current title, so a chat that changed meanwhile
is never shown as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

from db.models import Chat
from db.vocabulary import ChatListEventKind
from events.channels import owner_channel
from events.payloads import ChatListChanged, Resync
from events.sharing import shared_read, shared_row
from resolvers.chat_event_rows import ResyncEvent
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.permissions import require_viewer


@dataclass
class ChatListEventRow:
    kind: ChatListEventKind
    chat: Chat | None  # None only for RESYNC


@dataclass
class TitleChangeRow:
    chat_id: uuid.UUID
    title: str


async def _owned_chat(chat_id: uuid.UUID, owner_id: uuid.UUID) -> Chat | None:
    return await Chat.filter(id=chat_id, owner_id=owner_id).first()


async def _owner_events(
    ctx: RequestContext,
) -> AsyncIterator[tuple[ChatListChanged, Chat] | Resync]:
    """The owner's list changes with their chat read (once for all subscribers),
    and this subscriber's resyncs; a chat no longer theirs is skipped."""
    viewer = require_viewer(ctx)
    if ctx.events is None:
        raise RuntimeError("no event hub")
    async with ctx.events.hub.subscribe(owner_channel(viewer.id)) as subscription:
        async for event in subscription:
            ctx.reset_loaders()
            match event:
                case Resync():
                    yield event
                case ChatListChanged(chat_id=chat_id):
                    read = partial(_owned_chat, chat_id, viewer.id)
                    chat = await shared_read(event, ("owned_chat", viewer.id), read)
                    if chat is not None:
                        yield event, chat


async def chat_list_events(ctx: RequestContext) -> AsyncIterator[ChatListEventRow]:
    async for event in _owner_events(ctx):
        if isinstance(event, Resync):
            yield ChatListEventRow(ChatListEventKind.RESYNC, None)  # this subscriber's own
            continue
        changed, chat = event
        key = ("chat_list_event", chat.id)
        yield shared_row(changed, key, partial(ChatListEventRow, changed.change, chat))


async def title_changes(
    ctx: RequestContext, chat_gid: str | None
) -> AsyncIterator[TitleChangeRow | ResyncEvent]:
    # Like chatEvents: someone else's chat (or none) is NOT_FOUND, not a silent stream.
    only = (await own_chat(ctx, chat_gid, "chatId")).id if chat_gid else None
    async for event in _owner_events(ctx):
        if isinstance(event, Resync):
            yield ResyncEvent(only, event.reason)
            if only is not None:  # one chat: send its title as it is now
                current = await _owned_chat(only, require_viewer(ctx).id)
                if current is not None:
                    yield TitleChangeRow(current.id, current.title)
            continue
        changed, chat = event
        if changed.change is ChatListEventKind.TITLE_CHANGED and only in (None, chat.id):
            key = ("title_change", chat.id)
            yield shared_row(changed, key, partial(TitleChangeRow, chat.id, chat.title))
