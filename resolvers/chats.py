"""Chats: reading one, listing the viewer's, creating one."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from db.chat_files import link_files, part_file_ids
from db.keyset import Page, SortKey
from db.models import Chat, ChatMessage
from db.parts import parts_to_json
from db.raw_sql import fetchrow, model_from
from db.text_rules import clean_display_text
from db.titles import fallback_title
from db.vocabulary import (
    CHAT_SYSTEM_PROMPT_MAX,
    LABEL_KEY_MAX,
    LABEL_VALUE_MAX,
    LABELS_MAX,
    ChatListEventKind,
    ChatStatus,
    MessageRole,
    Permission,
    Visibility,
)
from events.announcer import ChatAnnouncer
from resolvers import global_id
from resolvers.chat_search import parse_chat_query, pr_status_condition
from resolvers.context import RequestContext
from resolvers.errors import bad_input, not_found
from resolvers.files import require_own_files
from resolvers.message_input import PartInputLike, parse_content
from resolvers.model_configs import chat_model_config_key
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import require_permission, require_viewer
from resolvers.usage_limits import require_spendable
from resolvers.workspaces import own_workspace_key

log = logging.getLogger(__name__)

LIST_ORDER = (
    SortKey("list_rank", kind="int"),
    SortKey("updated_at", descending=True, kind="datetime"),
    SortKey("id", descending=True, kind="uuid"),
)
_CHAT_SQL = "SELECT * FROM chats WHERE id = $1 AND owner_id = $2"
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]*")


async def publish(ctx: RequestContext, send: Callable[[ChatAnnouncer], Awaitable[None]]) -> None:
    """Publish after commit; a broadcast failure is logged, never undoes a write."""
    if ctx.events is None:
        return
    try:
        await send(ctx.events)
    except Exception:
        log.exception("publishing a chat event failed")


def chat_key(gid: str, field_name: str = "id") -> uuid.UUID:
    return global_id.decode_uuid(gid, "Chat", field=field_name)


async def own_chat(ctx: RequestContext, gid: str, field_name: str = "id") -> Chat:
    """The viewer's chat or NOT_FOUND: someone else's chat does not exist."""
    viewer = require_viewer(ctx)
    chat = await Chat.filter(id=chat_key(gid, field_name), owner_id=viewer.id).first()
    if chat is None:
        raise not_found("chat")
    return chat


async def chat(ctx: RequestContext, gid: str) -> Chat | None:
    if ctx.auth_error is not None:
        raise ctx.auth_error  # a bad token says so; no token is just signed out
    if ctx.viewer is None:
        return None
    row = await fetchrow(_CHAT_SQL, chat_key(gid), ctx.viewer.id)
    return None if row is None else model_from(Chat, row)


async def chats_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, Chat]:
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    return {c.id: c for c in await Chat.filter(id__in=keys, owner_id=ctx.viewer.id)}


async def chats(ctx: RequestContext, args: PageArgs, query: str | None) -> Page[Chat]:
    """Root chats of the viewer, pinned first, then most recently updated."""
    viewer = require_viewer(ctx)
    wanted = parse_chat_query(query)
    rows = Chat.filter(owner_id=viewer.id, parent_id=None)
    if wanted.archived is not None:
        rows = rows.filter(archived=wanted.archived)
    if wanted.statuses:
        rows = rows.filter(status__in=wanted.statuses)
    if wanted.title:
        rows = rows.filter(title__icontains=wanted.title)
    if wanted.has_unread is not None:
        unread = Q(last_assistant_message_id__isnull=False) & (
            Q(last_read_message_id__isnull=True)
            | Q(last_assistant_message_id__gt=F("last_read_message_id"))
        )
        rows = rows.filter(unread if wanted.has_unread else ~unread)
    # One containment per set, not one condition per term: each chained filter
    # nests the SQL tree a level deeper, and hundreds overflowed Python's stack.
    for labels in wanted.label_sets():
        rows = rows.filter(labels__contains=labels)
    if wanted.pr_statuses:
        rows = rows.filter(pr_status_condition(wanted.pr_statuses))
    return await paginate(rows, LIST_ORDER, args)


def check_labels(labels: Any, field_name: str = "labels") -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise bad_input(field_name, "must be an object of string values")
    if len(labels) > LABELS_MAX:
        raise bad_input(field_name, f"at most {LABELS_MAX} labels")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or len(key) > LABEL_KEY_MAX:
            raise bad_input(field_name, f"invalid key {key!r}", key=key)
        if not isinstance(value, str) or len(value) > LABEL_VALUE_MAX:
            raise bad_input(
                field_name, f"{key}: values are strings of at most {LABEL_VALUE_MAX}", key=key
            )
    # Shown in lists like titles: no control or bidirectional characters.
    return {key: clean_display_text(value) for key, value in labels.items()}


@dataclass
class CreatedChat:
    chat: Chat
    warnings: list[str] = field(default_factory=list)


async def create_chat(
    ctx: RequestContext,
    content: list[PartInputLike],
    *,
    model_config_id: str | None = None,
    workspace_id: str | None = None,
    plan_mode: bool | None = None,
    labels: Any = None,
    system_prompt: str | None = None,
) -> CreatedChat:
    viewer = require_permission(ctx, Permission.CREATE_CHAT)
    parts = parse_content(content)
    file_keys = part_file_ids(parts)
    await require_own_files(ctx, file_keys)
    checked_labels = check_labels(labels)
    if system_prompt is not None and len(system_prompt) > CHAT_SYSTEM_PROMPT_MAX:
        raise bad_input("systemPrompt", f"at most {CHAT_SYSTEM_PROMPT_MAX} characters")
    # One of the viewer's workspaces; anyone else's is NOT_FOUND.
    workspace_key = await own_workspace_key(ctx, workspace_id) if workspace_id else None
    # An enabled, non-deleted config; none given → the default (BAD_USER_INPUT if unset).
    model_key = await chat_model_config_key(model_config_id, use_default=True)
    await require_spendable(viewer.id, model_key)  # nothing is written for a refused send
    now = datetime.now(UTC)
    chat_id = uuid.uuid4()
    async with in_transaction() as conn:
        row = await Chat.create(
            id=chat_id,
            owner_id=viewer.id,
            root_id=chat_id,
            title=fallback_title(parts),
            status=ChatStatus.PENDING,
            plan_mode=bool(plan_mode),
            labels=checked_labels,
            system_prompt=system_prompt or None,
            model_config_id=model_key,
            workspace_id=workspace_key,
            updated_at=now,
            using_db=conn,
        )
        if system_prompt and system_prompt.strip():
            await ChatMessage.create(
                chat_id=chat_id,
                role=MessageRole.SYSTEM,
                parts=[{"type": "text", "text": system_prompt}],
                visibility=Visibility.MODEL,
                using_db=conn,
            )
        message = await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.USER,
            parts=parts_to_json(parts),
            created_by_id=viewer.id,
            model_config_id=model_key,
            using_db=conn,
        )
        warnings = await link_files(conn, chat_id, file_keys)

    await row.refresh_from_db(fields=["updated_at"])  # the message trigger moved it

    async def announce(events: ChatAnnouncer) -> None:
        await events.list_change(viewer.id, chat_id, ChatListEventKind.CREATED)
        await events.message(chat_id, message.id)
        await events.status(viewer.id, chat_id, ChatStatus.PENDING)

    await publish(ctx, announce)
    return CreatedChat(chat=row, warnings=warnings)
