"""Mutations on chats and messages: create, send, edit, queue, update, interrupt."""

from __future__ import annotations

from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from db.vocabulary import BusyBehavior
from resolvers import chat_titles, chat_updates, chats, messages
from schema.chat import Chat
from schema.info import Info
from schema.message import Message, QueuedMessage

BusyBehaviorEnum = strawberry.enum(BusyBehavior, name="BusyBehavior")


@strawberry.input(description="Code in the workspace the message points at.")
class FileReferenceInput:
    file_name: str
    start_line: int | None = None
    end_line: int | None = None
    content: str | None = None


@strawberry.input(description="One part of a message: exactly one of the fields.")
class MessagePartInput:
    text: str | None = None
    file_id: strawberry.ID | None = None
    file_reference: FileReferenceInput | None = None


@strawberry.input
class CreateChatInput:
    content: list[MessagePartInput]
    model_config_id: strawberry.ID | None = None
    workspace_id: strawberry.ID | None = None
    plan_mode: bool | None = None
    labels: JSON | None = None
    system_prompt: str | None = None


@strawberry.type
class CreateChatPayload:
    chat: Chat
    warnings: list[str]


@strawberry.input
class SendMessageInput:
    chat_id: strawberry.ID
    content: list[MessagePartInput]
    busy_behavior: BusyBehavior = BusyBehavior.QUEUE
    model_config_id: strawberry.ID | None = None
    plan_mode: bool | None = strawberry.field(
        default=None, description="Switch the chat's plan mode with this message (it stays)."
    )


@strawberry.type
class SendMessagePayload:
    chat: Chat
    message: Message | None = strawberry.field(
        description="Set when it became part of the history now."
    )
    queued_message: QueuedMessage | None = strawberry.field(description="Set when it was queued.")
    queued: bool
    warnings: list[str]


@strawberry.input
class EditMessageInput:
    message_id: strawberry.ID
    content: list[MessagePartInput]


@strawberry.type
class EditMessagePayload:
    chat: Chat
    message: Message
    warnings: list[str]


@strawberry.input
class QueuedMessageInput:
    id: strawberry.ID


@strawberry.type
class PromoteQueuedMessagePayload:
    chat: Chat
    message: Message
    warnings: list[str]


@strawberry.type
class DeleteQueuedMessagePayload:
    chat: Chat
    deleted_id: strawberry.ID
    warnings: list[str]


@strawberry.input(description="Only the fields given change; labels replace the whole map.")
class UpdateChatInput:
    id: strawberry.ID
    title: str | None = strawberry.UNSET
    archived: bool | None = strawberry.UNSET
    pin_order: int | None = strawberry.UNSET
    labels: JSON | None = strawberry.UNSET
    plan_mode: bool | None = strawberry.UNSET
    workspace_id: strawberry.ID | None = strawberry.UNSET
    debug_logging_override: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Debug logging for this chat: true or false whatever its owner chose, "
        "null to follow the owner. The owner (while the deployment allows users to choose) "
        "or an admin, who may set it on any chat.",
    )


@strawberry.input
class MarkChatReadInput:
    id: strawberry.ID


@strawberry.type
class ChatPayload:
    chat: Chat
    warnings: list[str]


def _row(value: Any) -> Any:
    return value


def _changes(data: UpdateChatInput) -> chat_updates.ChatChanges:
    changes = chat_updates.ChatChanges()
    names = ("title", "archived", "pin_order", "labels", "plan_mode", "workspace_id")
    for name in (*names, "debug_logging_override"):
        value = getattr(data, name)
        if value is not strawberry.UNSET:
            setattr(changes, name, value)
    return changes


def _send_payload(result: messages.SendResult) -> SendMessagePayload:
    return SendMessagePayload(
        chat=_row(result.chat),
        message=_row(result.message),
        queued_message=_row(result.queued_message),
        queued=result.queued,
        warnings=result.warnings,
    )


@strawberry.type
class ChatMutations:
    @strawberry.mutation(description="Start a chat with its first message; it runs at once.")
    async def create_chat(self, info: Info, input: CreateChatInput) -> CreateChatPayload:
        created = await chats.create_chat(
            info.context,
            cast(list[Any], input.content),
            model_config_id=input.model_config_id,
            workspace_id=input.workspace_id,
            plan_mode=input.plan_mode,
            labels=input.labels,
            system_prompt=input.system_prompt,
        )
        return CreateChatPayload(chat=_row(created.chat), warnings=created.warnings)

    @strawberry.mutation(
        description="Send a message: appended when the chat is idle, queued (max 20) when "
        "it is busy or already has a queue. INTERRUPT also stops the running turn."
    )
    async def send_message(self, info: Info, input: SendMessageInput) -> SendMessagePayload:
        result = await messages.send_message(
            info.context,
            input.chat_id,
            cast(list[Any], input.content),
            busy_behavior=input.busy_behavior,
            model_config_id=input.model_config_id,
            plan_mode=input.plan_mode,
        )
        return _send_payload(result)

    @strawberry.mutation(
        description="Replace one of your messages: later history is dropped, the queue "
        "cleared and the turn re-run. Live clients get HistoryReset."
    )
    async def edit_message(self, info: Info, input: EditMessageInput) -> EditMessagePayload:
        result = await messages.edit_message(
            info.context, input.message_id, cast(list[Any], input.content)
        )
        return EditMessagePayload(
            chat=_row(result.chat), message=_row(result.message), warnings=result.warnings
        )

    @strawberry.mutation(description="Move a queued message into the history now.")
    async def promote_queued_message(
        self, info: Info, input: QueuedMessageInput
    ) -> PromoteQueuedMessagePayload:
        result = await messages.promote_queued_message(info.context, input.id)
        return PromoteQueuedMessagePayload(
            chat=_row(result.chat), message=_row(result.message), warnings=[]
        )

    @strawberry.mutation(description="Drop a queued message.")
    async def delete_queued_message(
        self, info: Info, input: QueuedMessageInput
    ) -> DeleteQueuedMessagePayload:
        chat = await messages.delete_queued_message(info.context, input.id)
        return DeleteQueuedMessagePayload(chat=_row(chat), deleted_id=input.id, warnings=[])

    @strawberry.mutation(
        description="Rename (1..200 characters), relabel, pin (0 unpins), archive (the "
        "whole family), toggle plan mode or bind a workspace."
    )
    async def update_chat(self, info: Info, input: UpdateChatInput) -> Chat:
        return cast(Chat, await chat_updates.update_chat(info.context, input.id, _changes(input)))

    @strawberry.mutation(description="Stop the running turn; WAITING afterwards.")
    async def interrupt_chat(self, info: Info, id: strawberry.ID) -> Chat:
        return cast(Chat, await chat_updates.interrupt_chat(info.context, id))

    @strawberry.mutation(
        description="Ask a model for a better title (first user turn plus the last three "
        "turns). Returns the chat once the title changed; CONFLICT while one is running."
    )
    async def regenerate_chat_title(self, info: Info, id: strawberry.ID) -> Chat:
        return cast(Chat, await chat_titles.regenerate_chat_title(info.context, id))

    @strawberry.mutation(description="Mark the chat's latest reply as read.")
    async def mark_chat_read(self, info: Info, input: MarkChatReadInput) -> ChatPayload:
        chat = await chat_updates.mark_chat_read(info.context, input.id)
        return ChatPayload(chat=_row(chat), warnings=[])
