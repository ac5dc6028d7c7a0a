"""Uploaded files and their links to chats.

The bytes live in Postgres next to the metadata (as in the reference system):
one backup, one transaction, no second store to keep consistent. Metadata
reads never select ``data``.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from db.models.chat import Chat
from db.models.user import User


class ChatFile(Model):
    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="files", on_delete=fields.CASCADE
    )
    name = fields.TextField()
    mime_type = fields.CharField(max_length=100)
    size_bytes = fields.IntField()
    # Content address: identical bytes from one owner are one file (unique below).
    sha256 = fields.CharField(max_length=64)
    data = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chat_files"
        unique_together = (("owner", "sha256"),)


class ChatFileLink(Model):
    id = fields.BigIntField(primary_key=True)
    chat: fields.ForeignKeyRelation[Chat] = fields.ForeignKeyField(
        "models.Chat", related_name="file_links", on_delete=fields.CASCADE
    )
    file: fields.ForeignKeyRelation[ChatFile] = fields.ForeignKeyField(
        "models.ChatFile", related_name="links", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chat_file_links"
        unique_together = (("chat", "file"),)
