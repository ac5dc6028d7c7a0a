"""Debug logging: whether it applies to a chat, and the rows it writes.

Settings, in precedence order (the first that is set decides):

1. the chat's ``debug_logging_override`` (``true``/``false``; a sub-agent chat
   without one follows its root chat's override);
2. the owner's opt-in (``user_configs`` key ``chat_debug_logging_opt_in``),
   only while the deployment allows users to choose (``allowUsers``);
3. the deployment's ``enabled`` (``site_configs`` key ``agents_chat_debug_logging``,
   a JSON object ``{enabled, allowUsers, retentionDays}``; off by default).

A run costs one INSERT when it opens, one statement per step (the step's row
and the run's running totals together) and one UPDATE when it closes; with
logging off nothing is written. Every body is redacted here, on its way in
(``db.redaction``), so no caller can write one in clear.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from db import raw_sql
from db.chat_config import read_raw, write_raw
from db.costing import Usage
from db.models import DebugStep, SiteConfig, UserConfig
from db.models.debug import DebugRunKind, DebugStatus
from db.redaction import redact
from db.vocabulary import ChatMode

SETTINGS_KEY = "agents_chat_debug_logging"
OPT_IN_KEY = "chat_debug_logging_opt_in"
RETENTION_DAYS_DEFAULT = 30
RETENTION_DAYS_MIN = 1
RETENTION_DAYS_MAX = 365
# Runs deleted per statement; their steps (up to a hundred each) cascade with them.
PURGE_BATCH = 200


@dataclass(frozen=True)
class DebugLoggingSettings:
    enabled: bool = False
    allow_users: bool = False
    retention_days: int = RETENTION_DAYS_DEFAULT

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "allowUsers": self.allow_users,
            "retentionDays": self.retention_days,
        }


def parse_settings(value: Any) -> DebugLoggingSettings:
    """The stored object; anything malformed reads as the default of that field."""
    raw = value if isinstance(value, dict) else {}
    days = raw.get("retentionDays")
    if not (isinstance(days, int) and not isinstance(days, bool)) or not (
        RETENTION_DAYS_MIN <= days <= RETENTION_DAYS_MAX
    ):
        days = RETENTION_DAYS_DEFAULT
    return DebugLoggingSettings(
        enabled=raw.get("enabled") is True,
        allow_users=raw.get("allowUsers") is True,
        retention_days=days,
    )


async def read_settings() -> DebugLoggingSettings:
    return parse_settings(await read_raw(SETTINGS_KEY))


async def read_raw_in(conn: Any, key: str) -> Any:
    """A setting read inside ``conn``'s transaction."""
    row = await SiteConfig.filter(key=key).using_db(conn).first()
    return None if row is None else row.value


async def write_settings(settings: DebugLoggingSettings, conn: Any = None) -> None:
    await write_raw(SETTINGS_KEY, settings.to_json(), conn)


def parse_opt_in(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


async def read_opt_in(user_id: uuid.UUID) -> bool | None:
    row = await UserConfig.filter(user_id=user_id, key=OPT_IN_KEY).first()
    return None if row is None else parse_opt_in(row.value)


async def write_opt_in(user_id: uuid.UUID, enabled: bool | None) -> None:
    """``None`` clears the choice (the deployment's setting applies)."""
    if enabled is None:
        await UserConfig.filter(user_id=user_id, key=OPT_IN_KEY).delete()
        return
    await UserConfig.update_or_create(defaults={"value": enabled}, user_id=user_id, key=OPT_IN_KEY)


def logging_applies(
    settings: DebugLoggingSettings, opt_in: bool | None, override: bool | None
) -> bool:
    """The precedence rule (see the module doc)."""
    if override is not None:
        return override
    if settings.allow_users and opt_in is not None:
        return opt_in
    return settings.enabled


@dataclass(frozen=True)
class Target:
    """A chat as a new run needs it: whether logging applies, and its family."""

    chat_id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None
    explore: bool
    applies: bool


_TARGET_SQL = """
SELECT c.root_id, c.parent_id, c.mode,
  coalesce(c.debug_logging_override, r.debug_logging_override) AS override,
  (SELECT value FROM user_configs u WHERE u.user_id = c.owner_id AND u.key = $2) AS opt_in,
  (SELECT value FROM site_configs s WHERE s.key = $3) AS settings
FROM chats c LEFT JOIN chats r ON r.id = c.root_id AND r.id <> c.id
WHERE c.id = $1
"""


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def target(chat_id: uuid.UUID) -> Target | None:
    """One query: the chat, its root's override, the owner's choice, the settings."""
    row = await raw_sql.fetchrow(_TARGET_SQL, chat_id, OPT_IN_KEY, SETTINGS_KEY)
    if row is None:
        return None
    applies = logging_applies(
        parse_settings(_json(row["settings"])), parse_opt_in(_json(row["opt_in"])), row["override"]
    )
    return Target(
        chat_id=chat_id,
        root_id=row["root_id"],
        parent_id=row["parent_id"],
        explore=row["mode"] == ChatMode.EXPLORE.value,
        applies=applies,
    )


# ---------------------------------------------------------------- writing runs


def usage_json(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }


def _dump(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(frozen=True)
class NewRun:
    id: uuid.UUID
    target: Target
    kind: DebugRunKind
    provider: str | None
    model: str | None
    model_config_id: uuid.UUID | None
    worker_id: uuid.UUID | None
    started_at: datetime


@dataclass(frozen=True)
class RunState:
    """What a write left in the run's row, of the columns that change after it
    opens: announced with the change, so a live stream shows the run as of that
    change however late it reads (a later step or the end may be committed by then).
    Its steps as of the change are those with an index below ``step_count``."""

    status: DebugStatus
    step_count: int
    usage: dict[str, int] | None
    cost_micros: int | None
    finished_at: datetime | None


# Every write returns these, as committed by that statement.
_STATE = "status, step_count, usage, cost_micros, finished_at"


def _usage_of(value: Any) -> dict[str, int] | None:
    raw = _json(value)
    if not isinstance(raw, dict):
        return None
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def _state(row: Any) -> RunState:
    return RunState(
        status=DebugStatus(row["status"]),
        step_count=row["step_count"],
        usage=_usage_of(row["usage"]),
        cost_micros=row["cost_micros"],
        finished_at=row["finished_at"],
    )


_OPEN = f"""
INSERT INTO chat_debug_runs (id, chat_id, root_chat_id, parent_chat_id, model_config_id,
  worker_id, kind, status, provider, model, step_count, started_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'in_progress', $8, $9, 0, $10, $10)
RETURNING {_STATE}
"""


async def open_run(run: NewRun) -> RunState:
    row = await raw_sql.pool().fetchrow(
        _OPEN,
        run.id,
        run.target.chat_id,
        run.target.root_id,
        run.target.parent_id,
        run.model_config_id,
        run.worker_id,
        run.kind.value,
        run.provider,
        run.model,
        run.started_at,
    )
    return _state(row)


@dataclass
class StepRecord:
    """One model call as recorded: bodies are redacted by ``write_step``."""

    index: int
    operation: str  # stream | generate
    status: DebugStatus
    attempts: list[dict[str, Any]]
    started_at: datetime
    duration_ms: int | None
    usage: Usage | None
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: dict[str, Any] | None


# The step and the run's totals in one statement: one write per step.
_STEP = f"""
WITH step AS (
  INSERT INTO chat_debug_steps (run_id, step_index, operation, status, attempts, started_at,
    duration_ms, usage, request, response, error)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb)
)
UPDATE chat_debug_runs SET step_count = $2 + 1, usage = $12::jsonb, cost_micros = $13,
  updated_at = now()
WHERE id = $1
RETURNING {_STATE}
"""


def _step_params(step: StepRecord) -> tuple[Any, ...]:
    """The step's columns, redacted and serialised (CPU work: run off the loop)."""
    return (
        step.index,
        step.operation,
        step.status.value,
        _dump(redact(step.attempts)),
        step.started_at,
        step.duration_ms,
        _dump(usage_json(step.usage)),
        _dump(redact(step.request)),
        _dump(redact(step.response)),
        _dump(redact(step.error)),
    )


async def write_step(
    run_id: uuid.UUID, step: StepRecord, run_usage: Usage | None, run_cost: int | None
) -> RunState | None:
    """A request holds the whole conversation: redacting it takes milliseconds per
    hundred KiB, done in a worker thread so other chats' turns keep streaming.
    The run as the step left it (None: the run is gone)."""
    params = await asyncio.to_thread(_step_params, step)
    usage = _dump(usage_json(run_usage))
    row = await raw_sql.pool().fetchrow(_STEP, run_id, *params, usage, run_cost)
    return None if row is None else _state(row)


_CLOSE = f"""
UPDATE chat_debug_runs SET status = $2, error = $3::jsonb, usage = $4::jsonb,
  cost_micros = $5, finished_at = $6, updated_at = $6
WHERE id = $1 AND status = 'in_progress'
RETURNING {_STATE}
"""


async def close_run(
    run_id: uuid.UUID,
    status: DebugStatus,
    finished_at: datetime,
    usage: Usage | None,
    cost: int | None,
    error: dict[str, Any] | None = None,
) -> RunState | None:
    """The run as it ended; None when it had ended already (the stale sweep)."""
    row = await raw_sql.pool().fetchrow(
        _CLOSE,
        run_id,
        status.value,
        _dump(redact(error)),
        _dump(usage_json(usage)),
        cost,
        finished_at,
    )
    return None if row is None else _state(row)


# Runs still IN_PROGRESS that nothing is recording any more: their chat is held by
# another worker, or by none, and they have not moved for a while (a crash, a
# daemon killed mid-turn). A live title or compaction run moves within its timeout.
_STALE = """
UPDATE chat_debug_runs r SET status = 'interrupted', finished_at = now(), updated_at = now()
FROM chats c
WHERE r.chat_id = c.id AND r.status = 'in_progress' AND r.updated_at < $1
  AND (r.worker_id IS NULL OR c.worker_id IS DISTINCT FROM r.worker_id)
RETURNING r.id, r.chat_id, r.status, r.step_count, r.usage, r.cost_micros, r.finished_at
"""


@dataclass(frozen=True)
class ClosedRun:
    run_id: uuid.UUID
    chat_id: uuid.UUID
    state: RunState


async def close_stale_runs(before: datetime) -> list[ClosedRun]:
    """Close abandoned runs as INTERRUPTED, each with the state it ended in."""
    rows = await raw_sql.fetch(_STALE, before)
    return [ClosedRun(row["id"], row["chat_id"], _state(row)) for row in rows]


# Oldest first on the started_at index; steps cascade.
PURGE_SQL = (
    "WITH doomed AS (SELECT id FROM chat_debug_runs WHERE started_at < $1"
    " ORDER BY started_at LIMIT $2) DELETE FROM chat_debug_runs r USING doomed d WHERE r.id = d.id"
)


# ---------------------------------------------------------------- reading


async def steps_before(run_id: uuid.UUID, count: int) -> list[DebugStep]:
    """The run's first ``count`` steps: its steps as of a change (a step row never
    changes once written, so those are exactly what the change left)."""
    return await DebugStep.filter(run_id=run_id, step_index__lt=count).order_by("step_index")


async def steps_of_runs(run_ids: list[uuid.UUID]) -> list[list[DebugStep]]:
    """Each run's steps in order, one query for all of them (a page's dataloader)."""
    found: dict[uuid.UUID, list[DebugStep]] = {key: [] for key in run_ids}
    for row in await DebugStep.filter(run_id__in=run_ids).order_by("run_id", "step_index"):
        found[row.run_id].append(row)  # type: ignore[attr-defined]
    return [found[key] for key in run_ids]
