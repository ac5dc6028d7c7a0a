"""Reading debug runs: a chat's, newest first; one by id; live as they change.

A chat's runs are read through the chat, so only who may read the chat reads
them. By id (``node``) a run is its chat owner's, or any for an admin
(MANAGE_DEPLOYMENT_CONFIG); for anyone else it does not exist. The live stream
``debugRuns`` has ``chatEvents``' access rule: the viewer's own chat or NOT_FOUND.

A stream frame shows the run as of the change it announces, never as the row
is when the subscriber gets round to reading it: on a busy server that can be
after the next step or the end, and the frames in between would repeat a later
state (or the stream, waiting for the end, would miss them). The event carries
the columns that change (``DebugRunChanged``); the run's other columns never
change, and its steps as of the change are the ones below its step count.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from db.debug_runs import steps_before
from db.keyset import Page, SortKey
from db.models import Chat, DebugRun, DebugStatus
from db.vocabulary import Permission
from events.channels import debug_channel
from events.payloads import DebugRunChanged, Resync
from resolvers.chats import own_chat
from resolvers.context import RequestContext
from resolvers.pagination import PageArgs, paginate
from resolvers.permissions import has_permission

NEWEST_FIRST = (
    SortKey("started_at", descending=True, kind="datetime"),
    SortKey("id", descending=True, kind="uuid"),
)
PAGE_DEFAULT = 50
PAGE_MAX = 100


async def chat_debug_runs(chat: Chat, first: int | None, after: str | None) -> Page[DebugRun]:
    """Newest first, keyset-paged: at most 100 per page (50 by default)."""
    return await paginate(
        DebugRun.filter(chat_id=chat.id),
        NEWEST_FIRST,
        PageArgs(first=first, after=after),
        default_size=PAGE_DEFAULT,
        maximum=PAGE_MAX,
    )


async def runs_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[uuid.UUID, DebugRun]:
    """``node``/``nodes``: the viewer's chats' runs, or any run for an admin."""
    if ctx.viewer is None or ctx.auth_error is not None:
        return {}
    rows = DebugRun.filter(id__in=keys)
    if not has_permission(ctx, Permission.MANAGE_DEPLOYMENT_CONFIG):
        rows = rows.filter(chat__owner_id=ctx.viewer.id)
    return {row.id: row for row in await rows}


async def run_chat(run: DebugRun) -> Chat:
    return await Chat.get(id=run.chat_id)  # type: ignore[attr-defined]


async def _latest(ctx: RequestContext, chat_id: uuid.UUID) -> DebugRun | None:
    """The newest run as it is now, its steps consistent with its row."""
    row = await DebugRun.filter(chat_id=chat_id).order_by("-started_at", "-id").first()
    if row is not None:
        await _with_steps(ctx, row)
    return row


def _status(value: str | None) -> DebugStatus | None:
    """The announced status; None when the change came without a state (an older
    replica) or with one this version does not know: the row is shown as read."""
    try:
        return None if value is None else DebugStatus(value)
    except ValueError:
        return None


async def _as_of(
    ctx: RequestContext, chat_id: uuid.UUID, event: DebugRunChanged
) -> DebugRun | None:
    """The run as ``event``'s change left it (None: the run is gone)."""
    row = await DebugRun.filter(id=event.run_id, chat_id=chat_id).first()
    if row is None:
        return None
    status = _status(event.status)
    if status is not None:
        row.status = status
        row.step_count = event.step_count
        row.usage = event.usage
        row.cost_micros = event.cost_micros
        row.finished_at = event.finished_at
        if row.status is DebugStatus.IN_PROGRESS:
            row.error = None  # only the end writes it
    await _with_steps(ctx, row)
    return row


async def _with_steps(ctx: RequestContext, row: DebugRun) -> None:
    """``DebugRun.steps`` (a dataloader) gets the row's first ``step_count``
    steps, not whatever has been written by the time the frame executes."""
    ctx.loaders.debug_steps.prime(row.id, await steps_before(row.id, row.step_count))


async def stream_debug_runs(ctx: RequestContext, chat_gid: str) -> AsyncIterator[Any]:
    """The chat's newest run as it is now (when there is one), then each run as it
    starts, as each of its steps ends and as it ends. After a resync the newest
    run is sent again (changes in between may have been missed)."""
    chat = await own_chat(ctx, chat_gid, "chatId")
    if ctx.events is None:
        raise RuntimeError("no event hub")
    hub = ctx.events.hub
    while True:
        resynced = False
        async with hub.subscribe(debug_channel(chat.id)) as subscription:
            ctx.reset_loaders()  # a fresh loader for the frame, whatever ran before
            latest = await _latest(ctx, chat.id)
            if latest is not None:
                yield latest
            async for event in subscription:
                ctx.reset_loaders()  # loaders live for one event, never the connection
                match event:
                    case DebugRunChanged():
                        row = await _as_of(ctx, chat.id, event)
                        if row is not None:
                            yield row
                    case Resync():
                        resynced = True
                        break
        if not resynced:
            return
