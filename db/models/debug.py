"""Debug runs and their steps: what the daemon sent to a model and what came back.

Kept apart from messages (their bodies are large and their retention is their
own): a run is one chat turn, title, compaction or explore child; a step is one
model call with its attempts. ``root_chat_id``, ``parent_chat_id`` and
``model_config_id`` are snapshots without a foreign key, so they survive the
rows they name. Bodies are redacted before they are written (``db.redaction``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from db.models.chat import Chat


class DebugRunKind(StrEnum):
    CHAT_TURN = "chat_turn"
    TITLE_GENERATION = "title_generation"
    COMPACTION = "compaction"
    EXPLORE = "explore"


class DebugStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class DebugRun(Model):
    id = fields.UUIDField(primary_key=True)
    chat: fields.ForeignKeyRelation[Chat] = fields.ForeignKeyField(
        "models.Chat", related_name="debug_runs", on_delete=fields.CASCADE
    )
    root_chat_id = fields.UUIDField()
    parent_chat_id = fields.UUIDField(null=True)
    model_config_id = fields.UUIDField(null=True)
    # The daemon that records it: a run whose chat another worker (or none) holds
    # and that stopped moving is closed INTERRUPTED by the stale sweep.
    worker_id = fields.UUIDField(null=True)
    kind = fields.CharEnumField(DebugRunKind, max_length=20)
    status = fields.CharEnumField(DebugStatus, max_length=16, default=DebugStatus.IN_PROGRESS)
    provider = fields.CharField(max_length=32, null=True)
    model = fields.CharField(max_length=200, null=True)
    usage: fields.Field[Any] = fields.JSONField(null=True)
    cost_micros = fields.BigIntField(null=True)
    step_count = fields.IntField(default=0)
    error: fields.Field[Any] = fields.JSONField(null=True)
    started_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "chat_debug_runs"
        # Newest first per chat is a backward scan; started_at alone drives retention.
        indexes = (("chat_id", "started_at", "id"), ("started_at",), ("status", "updated_at"))


class DebugStep(Model):
    id = fields.BigIntField(primary_key=True)
    run: fields.ForeignKeyRelation[DebugRun] = fields.ForeignKeyField(
        "models.DebugRun", related_name="steps", on_delete=fields.CASCADE
    )
    step_index = fields.IntField()
    operation = fields.CharField(max_length=16)  # stream | generate
    status = fields.CharEnumField(DebugStatus, max_length=16)
    attempts: fields.Field[Any] = fields.JSONField(default=list)
    started_at = fields.DatetimeField()
    duration_ms = fields.IntField(null=True)
    usage: fields.Field[Any] = fields.JSONField(null=True)
    request: fields.Field[Any] = fields.JSONField()
    response: fields.Field[Any] = fields.JSONField(null=True)
    error: fields.Field[Any] = fields.JSONField(null=True)

    class Meta:
        table = "chat_debug_steps"
        unique_together = (("run", "step_index"),)
