"""Chats: the type, its structured error, and the chat queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from db.models import Chat as ChatRow
from db.vocabulary import ChatErrorKind, ChatMode, ChatStatus
from resolvers import chat_diffs, chats, messages, workspaces
from resolvers.pagination import PageArgs
from schema.chat_diff import ChatDiff, DiffStatus
from schema.connection import Connection, connection_of
from schema.cost import chat_cost_field
from schema.debug import chat_debug_runs_field
from schema.file import ChatFile
from schema.info import Info
from schema.message import Message, QueuedMessage
from schema.node import Node, global_id_field, row_is
from schema.user import User

if TYPE_CHECKING:
    from schema.workspace import Workspace

ChatStatusEnum = strawberry.enum(ChatStatus, name="ChatStatus")
ChatModeEnum = strawberry.enum(ChatMode, name="ChatMode")
ChatErrorKindEnum = strawberry.enum(ChatErrorKind, name="ChatErrorKind")


@strawberry.type(description="Why the last turn failed.")
class ChatError:
    kind: ChatErrorKind
    message: str
    detail: str | None
    provider: str | None
    retryable: bool
    status_code: int | None


def chat_error(raw: dict[str, Any] | None) -> ChatError | None:
    if not raw:
        return None
    return ChatError(
        kind=ChatErrorKind(raw.get("kind", ChatErrorKind.GENERIC.value)),
        message=str(raw.get("message", "")),
        detail=raw.get("detail"),
        provider=raw.get("provider"),
        retryable=bool(raw.get("retryable", False)),
        status_code=raw.get("statusCode"),
    )


def _last_error(root: ChatRow) -> ChatError | None:
    return chat_error(root.last_error)


@strawberry.type(description="A conversation with the agent.")
class Chat(Node):
    id: strawberry.ID = global_id_field("Chat")
    title: str
    status: ChatStatus
    mode: ChatMode | None
    plan_mode: bool
    archived: bool
    pin_order: int
    labels: JSON
    has_unread: bool
    created_at: datetime
    updated_at: datetime
    last_error: ChatError | None = strawberry.field(resolver=_last_error)
    debug_logging_override: bool | None = strawberry.field(
        description="Debug logging for this chat whatever its owner chose; null follows "
        "the owner (see DebugLoggingConfig). Set with updateChat (owner or admin)."
    )
    debug_runs = chat_debug_runs_field()
    cost = chat_cost_field()
    is_type_of = row_is(ChatRow)

    @strawberry.field
    async def owner(self, root: ChatRow, info: Info) -> User:
        return cast(User, await info.context.loaders.users.load(root.owner_id))  # type: ignore[attr-defined]

    @strawberry.field(description="The chat that spawned this one (sub-agents).")
    async def parent(self, root: ChatRow, info: Info) -> Chat | None:
        key = root.parent_id  # type: ignore[attr-defined]
        return None if key is None else cast(Chat, await info.context.loaders.chats.load(key))

    @strawberry.field(description="Sub-agent chats, oldest first.")
    async def children(self, root: ChatRow, info: Info) -> list[Chat]:
        return cast(list[Chat], await info.context.loaders.children.load(root.id))

    @strawberry.field(description="The visible history; the newest 50 by default (max 200).")
    async def messages(
        self,
        root: ChatRow,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Message]:
        args = PageArgs(first, after, last, before)
        page = await messages.messages(root, args, info.context.loaders)
        return cast(Connection[Message], connection_of(page))

    @strawberry.field(description="Files linked to the chat (at most 50), oldest link first.")
    async def files(self, root: ChatRow, info: Info) -> list[ChatFile]:
        return cast(list[ChatFile], await info.context.loaders.chat_files.load(root.id))

    @strawberry.field(description="Messages waiting for the running turn, oldest first.")
    async def queued_messages(self, root: ChatRow, info: Info) -> list[QueuedMessage]:
        return cast(list[QueuedMessage], await info.context.loaders.queues.load(root.id))

    @strawberry.field(description="The workspace the agent works in; null when none is bound.")
    async def workspace(
        self, root: ChatRow, info: Info
    ) -> Annotated[Workspace, strawberry.lazy("schema.workspace")] | None:
        key = root.workspace_id
        if key is None:
            return None
        found = await info.context.loaders.workspaces.load(key)
        if found is None or found.owner_id != root.owner_id:  # type: ignore[attr-defined]
            return None
        return cast("Workspace", found)

    @strawberry.field(
        description="The pull request's diff, else the workspace's working tree, else empty "
        "with a reason; never an error."
    )
    async def diff(self, root: ChatRow, info: Info) -> ChatDiff:
        return cast(ChatDiff, await chat_diffs.chat_diff(info.context, root))

    @strawberry.field(description="The branch's pull request; null until the provider reported.")
    async def diff_status(self, root: ChatRow, info: Info) -> DiffStatus | None:
        return cast(DiffStatus | None, await chat_diffs.diff_status(info.context, root))


@strawberry.type
class ChatQueries:
    @strawberry.field(
        description="For each workspace (at most 25 ids), your most recently updated "
        "non-archived chat bound to it; workspaces without one are left out."
    )
    async def chats_by_workspace(
        self, info: Info, workspace_ids: list[strawberry.ID]
    ) -> list[Chat]:
        rows = await workspaces.chats_by_workspace(info.context, list(workspace_ids))
        return cast(list[Chat], rows)

    @strawberry.field(description="One of your chats; null when absent or not yours.")
    async def chat(self, info: Info, id: strawberry.ID) -> Chat | None:
        return cast(Chat | None, await chats.chat(info.context, id))

    @strawberry.field(
        description="Your top-level chats: pinned first, then most recently updated. "
        "`query` filters with key:value terms: archived:true|false|any (default false), "
        "status:<status>, title:<text>, has_unread:true|false, label:key=value, "
        "pr_status:open|draft|merged|closed|none (none: no pull request)."
    )
    async def chats(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        query: str | None = None,
    ) -> Connection[Chat]:
        page = await chats.chats(info.context, PageArgs(first, after, last, before), query)
        return cast(Connection[Chat], connection_of(page))
