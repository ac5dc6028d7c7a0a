"""Owner-wide live streams: ``chatListEvents`` and ``titleChanges``.

Both follow the owner's channel; each event carries a chat id and the chat is
read from the database per event (with the owner check), so a client always
gets current rows and never another user's chat. Subscribers of one owner
channel share that read and the rows made from an event (``db.hub_event``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from db.chat_events import owner_channel
from db.hub_event import shared_read, shared_row
from db.models import Chat
from db.vocabulary import ChatListEventKind
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.permissions import require_viewer

_KINDS = {kind.value: kind for kind in ChatListEventKind}


@dataclass
class ChatListEventRow:
    kind: ChatListEventKind
    chat: Chat


@dataclass
class TitleChangeRow:
    chat_id: uuid.UUID
    title: str


async def _owned_chat(chat_id: Any, owner_id: uuid.UUID) -> Chat | None:
    return await Chat.filter(id=chat_id, owner_id=owner_id).first()


async def _owner_events(
    ctx: RequestContext,
) -> AsyncIterator[tuple[Mapping[str, Any], str, Chat]]:
    viewer = require_viewer(ctx)
    if ctx.events is None:
        raise RuntimeError("no event hub")
    async with ctx.events.hub.subscribe(owner_channel(viewer.id)) as subscription:
        async for raw in subscription:
            ctx.reset_loaders()
            chat_id = raw.get("chatId")
            if not chat_id:
                continue
            read = partial(_owned_chat, chat_id, viewer.id)
            chat = await shared_read(raw, ("owned_chat", viewer.id), read)
            if chat is not None:
                yield raw, str(raw.get("kind")), chat


async def chat_list_events(ctx: RequestContext) -> AsyncIterator[ChatListEventRow]:
    async for raw, kind, chat in _owner_events(ctx):
        if kind in _KINDS:
            key = ("chat_list_event", chat.id)
            yield shared_row(raw, key, partial(ChatListEventRow, _KINDS[kind], chat))


async def title_changes(ctx: RequestContext, chat_gid: str | None) -> AsyncIterator[TitleChangeRow]:
    # Like chatEvents: someone else's chat (or none) is NOT_FOUND, not a silent stream.
    only = (await own_chat(ctx, chat_gid, "chatId")).id if chat_gid else None
    async for raw, kind, chat in _owner_events(ctx):
        if kind == ChatListEventKind.TITLE_CHANGED.value and only in (None, chat.id):
            key = ("title_change", chat.id)
            yield shared_row(raw, key, partial(TitleChangeRow, chat.id, chat.title))
