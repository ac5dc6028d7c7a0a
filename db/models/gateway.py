"""One row per model call through the AI gateway (and, later, the daemon's own).

Metrics only: bodies are never stored here (debug logs keep those, redacted,
under their own retention), so a row stays small and the table stays fast to
page and to purge. ``model_config_id`` and ``chat_id`` are snapshots without a
foreign key, so a row outlives the config or chat it names; ``user`` cascades
with the account.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from db.models.user import User

CLIENT_MAX = 32
USER_AGENT_MAX = 512
SESSION_ID_MAX = 128
ENDPOINT_MAX = 64


class AiRequestLog(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="ai_request_logs", on_delete=fields.CASCADE
    )
    # Detected from the User-Agent and client headers ("Unknown" when nothing matched).
    client = fields.CharField(max_length=CLIENT_MAX)
    user_agent = fields.CharField(max_length=USER_AGENT_MAX, null=True)
    # A client's session (Claude Code, Codex…): never a user id.
    session_id = fields.CharField(max_length=SESSION_ID_MAX, null=True)
    provider = fields.CharField(max_length=32)
    model = fields.CharField(max_length=200)
    model_config_id = fields.UUIDField(null=True)
    endpoint = fields.CharField(max_length=ENDPOINT_MAX)
    stream = fields.BooleanField(default=False)
    # The upstream HTTP status (ours for 502/504 when the provider never answered).
    status = fields.SmallIntField()
    # NULL usage: the call reported none (an error before any output).
    input_tokens = fields.BigIntField(null=True)
    output_tokens = fields.BigIntField(null=True)
    reasoning_tokens = fields.BigIntField(null=True)
    cache_read_tokens = fields.BigIntField(null=True)
    cache_write_tokens = fields.BigIntField(null=True)
    # NULL: unpriced (or nothing billed); otherwise integer micro-USD, rounded up.
    cost_micros = fields.BigIntField(null=True)
    started_at = fields.DatetimeField()
    duration_ms = fields.IntField()
    time_to_first_token_ms = fields.IntField(null=True)
    # Set for the daemon's own calls; NULL for gateway requests.
    chat_id = fields.UUIDField(null=True)

    class Meta:
        table = "ai_request_logs"
        indexes = (
            Index(fields=("started_at", "id"), name="ai_request_logs_started"),
            Index(fields=("user_id", "started_at", "id"), name="ai_request_logs_user_started"),
            Index(fields=("client",), name="ai_request_logs_client"),
        )

    def __repr__(self) -> str:
        return f"<AiRequestLog {self.id}>"
