"""Live subscriptions: a chat's events, the owner's chat list, title changes, git.

Event types describe the small dataclasses the stream resolvers yield; ids are
encoded here, parts and errors decoded from their stored JSON. The fields hand
the resolvers' streams over as they are (no re-yielding wrapper per event).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry

from db.parts import from_json
from db.vocabulary import ChatListEventKind, ChatStatus, MessageRole
from resolvers import (
    chat_event_rows,
    chat_list_stream,
    chat_stream,
    debug_runs,
    git_stream,
    global_id,
)
from schema.chat import Chat, ChatError, chat_error
from schema.chat_diff import GitChanges
from schema.debug import DebugRun
from schema.info import Info
from schema.message import Message, MessagePart, QueuedMessage
from schema.node import row_is

ChatListEventKindEnum = strawberry.enum(ChatListEventKind, name="ChatListEventKind")


def _chat_id(root: Any) -> strawberry.ID:
    return strawberry.ID(global_id.encode("Chat", root.chat_id))


def _error(root: Any) -> ChatError:
    error = chat_error(root.error)
    assert error is not None
    return error


@strawberry.type(description="Append-only delta of the running step's part at partIndex.")
class PartDelta:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    part_index: int

    @strawberry.field
    def role(self, root: chat_event_rows.PartDeltaEvent) -> MessageRole:
        return MessageRole(root.role)

    @strawberry.field(description="Text parts carry only the text to append.")
    def part(self, root: chat_event_rows.PartDeltaEvent) -> MessagePart:
        return cast(MessagePart, from_json(root.part))

    is_type_of = row_is(chat_event_rows.PartDeltaEvent)


@strawberry.type(description="A durable message; `cursor` resumes the stream after it.")
class MessageCreated:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    cursor: str
    message: Message
    is_type_of = row_is(chat_event_rows.MessageCreatedEvent)


@strawberry.type
class StatusChanged:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    status: ChatStatus
    is_type_of = row_is(chat_event_rows.StatusChangedEvent)


@strawberry.type(description="The turn failed; the chat is in ERROR with this lastError.")
class ChatFailed:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    error: ChatError = strawberry.field(resolver=_error)
    is_type_of = row_is(chat_event_rows.ChatFailedEvent)


@strawberry.type(description="A provider error will be retried at retryingAt.")
class RetryScheduled:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    attempt: int
    delay_ms: int
    retrying_at: datetime
    error: ChatError = strawberry.field(resolver=_error)
    is_type_of = row_is(chat_event_rows.RetryScheduledEvent)


@strawberry.type(description="The whole queue as it is now.")
class QueueUpdated:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    queued_messages: list[QueuedMessage]
    is_type_of = row_is(chat_event_rows.QueueUpdatedEvent)


@strawberry.type(
    description="The running step's parts received so far are void (the run that "
    "streamed them stopped and another streams the step again): drop them."
)
class PartsReset:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    reason: str
    is_type_of = row_is(chat_event_rows.PartsResetEvent)


@strawberry.type(description="History changed (an edit): refetch messages.")
class HistoryReset:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    is_type_of = row_is(chat_event_rows.HistoryResetEvent)


@strawberry.type(
    description="Events were dropped: in chatEvents refetch from your cursor; in "
    "titleChanges refetch titles (for one chat, its current title follows)."
)
class Resync:
    reason: str

    @strawberry.field
    def chat_id(self, root: chat_event_rows.ResyncEvent) -> strawberry.ID | None:
        return None if root.chat_id is None else _chat_id(root)

    is_type_of = row_is(chat_event_rows.ResyncEvent)


ChatEvent = Annotated[
    PartDelta
    | PartsReset
    | MessageCreated
    | StatusChanged
    | ChatFailed
    | RetryScheduled
    | QueueUpdated
    | HistoryReset
    | Resync,
    strawberry.union("ChatEvent"),
]


@strawberry.type
class ChatListEvent:
    kind: ChatListEventKind
    chat: Chat | None = strawberry.field(description="Null only for RESYNC.")
    is_type_of = row_is(chat_list_stream.ChatListEventRow)


@strawberry.type
class TitleChange:
    chat_id: strawberry.ID = strawberry.field(resolver=_chat_id)
    title: str
    is_type_of = row_is(chat_list_stream.TitleChangeRow)


TitleEvent = Annotated[TitleChange | Resync, strawberry.union("TitleEvent")]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Resumable: pass the endCursor of the messages you already have; the "
        "server replays what came after it, then streams live events. Nothing lost or doubled."
    )
    def chat_events(
        self, info: Info, chat_id: strawberry.ID, after: str | None = None
    ) -> AsyncGenerator[ChatEvent, None]:
        return cast(
            AsyncGenerator[ChatEvent, None],
            chat_stream.stream_chat_events(info.context, chat_id, after),
        )

    @strawberry.subscription(
        description="Changes to any of your chats, for chat lists. RESYNC (chat null) "
        "means events were lost (this stream fell behind, or the server's broadcast "
        "backend reconnected): refetch your chat list; the stream goes on."
    )
    def chat_list_events(self, info: Info) -> AsyncGenerator[ChatListEvent, None]:
        return cast(
            AsyncGenerator[ChatListEvent, None], chat_list_stream.chat_list_events(info.context)
        )

    @strawberry.subscription(
        description="New titles of one of your chats, or of all of them. A Resync means "
        "titles may have been missed: for one chat its current title follows as a "
        "TitleChange; for all of them, refetch the titles you show."
    )
    def title_changes(
        self, info: Info, chat_id: strawberry.ID | None = None
    ) -> AsyncGenerator[TitleEvent, None]:
        return cast(
            AsyncGenerator[TitleEvent, None], chat_list_stream.title_changes(info.context, chat_id)
        )

    @strawberry.subscription(
        description="The git state of the chat's workspace: every repository first, then "
        "the ones that changed. A chat without a workspace gets one empty frame."
    )
    def git_changes(self, info: Info, chat_id: strawberry.ID) -> AsyncGenerator[GitChanges, None]:
        return cast(AsyncGenerator[GitChanges, None], git_stream.git_changes(info.context, chat_id))

    @strawberry.subscription(
        description="The chat's debug runs: its newest run as it is now, then each run as "
        "it starts, as each step ends and as it ends (the run with its steps so far). "
        "Your own chats only, like chatEvents; after a resync the newest run is sent again."
    )
    def debug_runs(self, info: Info, chat_id: strawberry.ID) -> AsyncGenerator[DebugRun, None]:
        return cast(
            AsyncGenerator[DebugRun, None], debug_runs.stream_debug_runs(info.context, chat_id)
        )
