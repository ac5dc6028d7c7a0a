"""Chats, their messages and their queue."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.models import Model

from db.models.user import User
from db.vocabulary import UNPINNED_RANK, ChatMode, ChatStatus, MessageRole, Visibility


class Chat(Model):
    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="chats", on_delete=fields.CASCADE
    )
    # Sub-agent chats point at their parent; every chat points at the family root
    # (itself for a root), which archive cascades and cost roll-ups follow.
    parent: fields.ForeignKeyNullableRelation[Chat] = fields.ForeignKeyField(
        "models.Chat", related_name="children", null=True, on_delete=fields.CASCADE
    )
    root_id = fields.UUIDField(db_index=True)
    workspace_id = fields.UUIDField(null=True, db_index=True)
    model_config_id = fields.UUIDField(null=True)
    title = fields.CharField(max_length=200)
    status = fields.CharEnumField(ChatStatus, max_length=20, default=ChatStatus.WAITING)
    mode = fields.CharEnumField(ChatMode, max_length=20, null=True)
    plan_mode = fields.BooleanField(default=False)
    archived = fields.BooleanField(default=False)
    pin_order = fields.IntField(default=0)
    # pin_order for pinned chats, UNPINNED_RANK otherwise: the list's first sort key.
    list_rank = fields.IntField(default=UNPINNED_RANK)
    labels: fields.Field[Any] = fields.JSONField(default=dict)
    system_prompt = fields.TextField(null=True)
    # Debug logging for this chat whatever the owner chose; null follows them.
    debug_logging_override = fields.BooleanField(null=True)
    worker_id = fields.UUIDField(null=True)
    started_at = fields.DatetimeField(null=True)
    heartbeat_at = fields.DatetimeField(null=True)
    last_error: fields.Field[Any] = fields.JSONField(null=True)
    last_read_message_id = fields.BigIntField(null=True)
    # Denormalised so "unread" is a column comparison, in lists and filters alike.
    last_assistant_message_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "chats"
        indexes = (PostgreSQLIndex(fields=("status",), condition={"status": "pending"}),)

    @property
    def has_unread(self) -> bool:
        last = self.last_assistant_message_id
        return last is not None and last > (self.last_read_message_id or 0)


class ChatMessage(Model):
    id = fields.BigIntField(primary_key=True)
    chat: fields.ForeignKeyRelation[Chat] = fields.ForeignKeyField(
        "models.Chat", related_name="messages", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(MessageRole, max_length=16)
    parts: fields.Field[Any] = fields.JSONField()
    visibility = fields.CharEnumField(Visibility, max_length=8, default=Visibility.BOTH)
    compressed = fields.BooleanField(default=False)
    deleted = fields.BooleanField(default=False)
    input_tokens = fields.IntField(null=True)
    output_tokens = fields.IntField(null=True)
    reasoning_tokens = fields.IntField(null=True)
    cache_read_tokens = fields.IntField(null=True)
    cache_write_tokens = fields.IntField(null=True)
    total_cost_micros = fields.BigIntField(null=True)
    # The model's prices (micro-USD per million tokens) when the call was made:
    # a later price change never rewrites what a message cost.
    input_price_micros = fields.BigIntField(null=True)
    output_price_micros = fields.BigIntField(null=True)
    cache_read_price_micros = fields.BigIntField(null=True)
    cache_write_price_micros = fields.BigIntField(null=True)
    runtime_ms = fields.IntField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    model_config_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chat_messages"
        indexes = (("chat_id", "id"),)


class ChatQueuedMessage(Model):
    id = fields.BigIntField(primary_key=True)
    chat: fields.ForeignKeyRelation[Chat] = fields.ForeignKeyField(
        "models.Chat", related_name="queued_messages", on_delete=fields.CASCADE
    )
    parts: fields.Field[Any] = fields.JSONField()
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="queued_messages", null=True, on_delete=fields.SET_NULL
    )
    model_config_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chat_queued_messages"
        indexes = (("chat_id", "id"),)
