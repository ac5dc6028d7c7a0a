"""Messages, their typed parts, usage and queued messages.

Hot list types: fields are plain attributes of the rows wherever possible, and
part objects are the ``db.parts`` dataclasses themselves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from db import parts as p
from db.chat_files import FileMeta
from db.message_rows import MessageRow
from db.models import ChatMessage, ChatQueuedMessage
from db.vocabulary import MessageRole
from schema.file import ChatFile
from schema.info import Info
from schema.node import Node, global_id_field, row_is
from schema.user import User

MessageRoleEnum = strawberry.enum(MessageRole, name="MessageRole")


@strawberry.type
class TextPart:
    text: str
    is_type_of = row_is(p.TextPart)


@strawberry.type
class ReasoningPart:
    text: str
    is_type_of = row_is(p.ReasoningPart)


@strawberry.type
class ToolCallPart:
    tool_call_id: str
    tool_name: str
    args: JSON
    is_type_of = row_is(p.ToolCallPart)


@strawberry.type
class ToolResultPart:
    tool_call_id: str
    tool_name: str
    result: JSON
    is_error: bool
    is_type_of = row_is(p.ToolResultPart)


@strawberry.type(description="An attached file (batched: one query for all parts).")
class FilePart:
    @strawberry.field(description="The file; a purged one reads as a zero-byte tombstone.")
    async def file(self, root: p.FilePart, info: Info) -> ChatFile:
        key = uuid.UUID(root.file_id)
        meta = await info.context.loaders.files.load(key)
        return cast(ChatFile, meta if meta is not None else tombstone(key))

    is_type_of = row_is(p.FilePart)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tombstone(key: uuid.UUID) -> FileMeta:
    """What a message shows for a file that retention already deleted."""
    return FileMeta(
        key, uuid.UUID(int=0), "deleted file", "application/octet-stream", 0, "", _EPOCH
    )


@strawberry.type
class FileReferencePart:
    file_name: str
    start_line: int | None
    end_line: int | None
    content: str | None
    is_type_of = row_is(p.FileReferencePart)


@strawberry.type
class SourcePart:
    url: str
    title: str | None
    is_type_of = row_is(p.SourcePart)


MessagePart = Annotated[
    TextPart
    | ReasoningPart
    | ToolCallPart
    | ToolResultPart
    | FilePart
    | FileReferencePart
    | SourcePart,
    strawberry.union("MessagePart"),
]


@strawberry.type(description="Tokens one model step used.")
class Usage:
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


def _usage(root: ChatMessage | MessageRow) -> Usage | None:
    if root.input_tokens is None and root.output_tokens is None:
        return None
    return Usage(
        input_tokens=root.input_tokens or 0,
        output_tokens=root.output_tokens or 0,
        reasoning_tokens=root.reasoning_tokens or 0,
        cache_read_tokens=root.cache_read_tokens or 0,
        cache_write_tokens=root.cache_write_tokens or 0,
    )


def _parts(root: Any) -> list[MessagePart]:
    return p.parts_from_json(root.parts)  # type: ignore[return-value]


@strawberry.type(description="One message of a chat's history.")
class Message(Node):
    id: strawberry.ID = global_id_field("Message")
    role: MessageRole
    created_at: datetime
    parts: list[MessagePart] = strawberry.field(resolver=_parts)
    usage: Usage | None = strawberry.field(resolver=_usage)

    @strawberry.field(description="Who wrote it (user messages).")
    async def created_by(self, root: ChatMessage | MessageRow, info: Info) -> User | None:
        key = root.created_by_id  # type: ignore[union-attr]
        if key is None:
            return None
        return cast(User | None, await info.context.loaders.users.load(key))

    @strawberry.field(description="Cost in micro-dollars (assistant messages).")
    def cost_micros(self, root: ChatMessage | MessageRow) -> int | None:
        return root.total_cost_micros

    @strawberry.field(description="How long the model step took (assistant messages).")
    def runtime_ms(self, root: ChatMessage | MessageRow) -> int | None:
        return root.runtime_ms

    is_type_of = row_is((ChatMessage, MessageRow))


@strawberry.type(description="A message waiting for the chat's running turn to end.")
class QueuedMessage(Node):
    id: strawberry.ID = global_id_field("QueuedMessage")
    created_at: datetime
    parts: list[MessagePart] = strawberry.field(resolver=_parts)
    is_type_of = row_is(ChatQueuedMessage)


__all__ = ["Message", "MessagePart", "MessageRoleEnum", "QueuedMessage", "Usage"]
