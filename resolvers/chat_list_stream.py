"""Owner-wide live streams: ``chatListEvents`` and ``titleChanges``.

Both follow the owner's channel; each event carries a chat id and the chat is
read from the database per event (with the owner check), so a client always
gets current rows and never another user's chat.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from db.chat_events import owner_channel
from db.models import Chat
from db.vocabulary import ChatListEventKind
from resolvers.chats import chat_key
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


async def _owner_events(ctx: RequestContext) -> AsyncIterator[tuple[str, Chat]]:
    viewer = require_viewer(ctx)
    if ctx.events is None:
        raise RuntimeError("no event hub")
    async with ctx.events.hub.subscribe(owner_channel(viewer.id)) as subscription:
        async for raw in subscription:
            ctx.reset_loaders()
            chat_id = raw.get("chatId")
            if not chat_id:
                continue
            chat = await Chat.filter(id=chat_id, owner_id=viewer.id).first()
            if chat is not None:
                yield str(raw.get("kind")), chat


async def chat_list_events(ctx: RequestContext) -> AsyncIterator[ChatListEventRow]:
    async for kind, chat in _owner_events(ctx):
        if kind in _KINDS:
            yield ChatListEventRow(_KINDS[kind], chat)


async def title_changes(ctx: RequestContext, chat_gid: str | None) -> AsyncIterator[TitleChangeRow]:
    only = chat_key(chat_gid, "chatId") if chat_gid else None
    async for kind, chat in _owner_events(ctx):
        if kind == ChatListEventKind.TITLE_CHANGED.value and only in (None, chat.id):
            yield TitleChangeRow(chat.id, chat.title)
