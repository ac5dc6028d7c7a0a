"""AI request logs: who may read which rows, the filtered keyset page, the clients seen.

Members read their own rows; VIEW_REQUEST_LOGS reads everyone's. A member who
filters on another user gets an empty page (existence does not leak, as for
another user's object), never a FORBIDDEN that would confirm the user exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from db import ai_request_logs
from db.keyset import Page, SortKey
from db.models import AiRequestLog, Chat, User
from db.vocabulary import Permission
from resolvers import global_id, nodes
from resolvers.context import RequestContext
from resolvers.errors import bad_input
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import has_permission, require_viewer

ORDER = (
    SortKey("started_at", descending=True, kind="datetime"),
    SortKey("id", descending=True, kind="bigint"),
)
CLIENTS_MAX = 50


@dataclass(frozen=True)
class LogFilterInput:
    clients: list[str] | None = None
    provider: str | None = None
    model: str | None = None
    user_id: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None


@dataclass
class LogPage:
    """A page and the filter's total (``totalCount``), counted only when asked."""

    page: Page[AiRequestLog]
    where: ai_request_logs.LogFilter

    async def total_count(self) -> int:
        return await ai_request_logs.filtered(self.where).count()


def _scope(ctx: RequestContext) -> uuid.UUID | None:
    """The only user whose rows the viewer may read; None: everyone's."""
    viewer = require_viewer(ctx)
    return None if has_permission(ctx, Permission.VIEW_REQUEST_LOGS) else viewer.id


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise bad_input(field, "must carry a time zone")
    return value


async def ai_request_logs_page(
    ctx: RequestContext, args: PageArgs, given: LogFilterInput | None
) -> LogPage:
    scope = _scope(ctx)
    given = given or LogFilterInput()
    if given.clients is not None and len(given.clients) > CLIENTS_MAX:
        raise bad_input("filter.clients", f"at most {CLIENTS_MAX} clients")
    user_id = scope
    if given.user_id is not None:
        user_id = global_id.decode_uuid(given.user_id, "User", field="filter.userId")
    where = ai_request_logs.LogFilter(
        user_id=user_id,
        # Another user's rows, asked for by a member: none, as if there were none.
        empty=scope is not None and user_id != scope,
        clients=given.clients,
        provider=given.provider,
        model=given.model,
        started_from=_aware(given.started_from, "filter.from"),
        started_to=_aware(given.started_to, "filter.to"),
    )
    page = await paginate(ai_request_logs.filtered(where), ORDER, args)
    return LogPage(page=page, where=where)


async def ai_clients(ctx: RequestContext) -> list[str]:
    return await ai_request_logs.clients(_scope(ctx))


async def logs_by_ids(ctx: RequestContext, keys: list[int]) -> dict[int, AiRequestLog]:
    """Node lookups: own rows, or all with VIEW_REQUEST_LOGS; others are null."""
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    return await ai_request_logs.by_ids(keys, _scope(ctx))


async def log_user(ctx: RequestContext, row: AiRequestLog) -> User:
    return await ctx.loaders.users.load(row.user_id)  # type: ignore[attr-defined,no-any-return]


async def log_chat(ctx: RequestContext, row: AiRequestLog) -> Chat | None:
    """The daemon's own calls name their chat; only its owner sees it."""
    if row.chat_id is None or ctx.viewer is None:
        return None
    chat: Chat | None = await ctx.loaders.chats.load(row.chat_id)
    return chat if chat is not None and chat.owner_id == ctx.viewer.id else None  # type: ignore[attr-defined]


nodes.register("AiRequestLog", global_id.parse_bigint, logs_by_ids)
