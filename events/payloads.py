"""What travels on the bus: one kind per event, one frozen dataclass per kind.

Publishers build these, subscribers receive them (``Event`` is the tagged
union) and dispatch with ``match``/``isinstance``. How each is written as a
small JSON string lives in ``events.wire``, nowhere else. Payloads carry ids
and small fields; receivers read rows from the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from db.vocabulary import ChatErrorKind, ChatListEventKind, ChatStatus

# A message part as stored in ``chat_messages.parts`` (text, tool call, file…):
# the delta is content, not bus structure, so it stays JSON.
PartJson = dict[str, Any]


class EventKind(StrEnum):
    """The ``kind`` tag of every event (its wire name)."""

    # chat:<id>
    STATUS = "status"
    PART = "part"
    PARTS_RESET = "parts_reset"
    RETRY = "retry"
    ERROR = "error"
    MESSAGE = "message"
    QUEUE = "queue"
    HISTORY_RESET = "history_reset"
    # owner:<id> (a list change travels under its own name, e.g. ``created``)
    LIST_CHANGE = "list_change"
    TITLE_FAILED = "title_failed"
    # work
    WAKE = "wake"
    TITLE = "title"
    GIT_REFRESH = "git_refresh"
    # git:<workspace>
    GIT = "git"
    # debug:<chat>
    DEBUG_RUN = "debug_run"
    # sessions
    SESSION_ENDED = "session_ended"
    # config
    CONFIG = "config"
    # made by a subscription for its consumer, never published
    RESYNC = "resync"


@dataclass(frozen=True)
class ChatErrorInfo:
    """Why a turn failed or is retried (the ``ChatError`` shape, ``last_error``)."""

    kind: ChatErrorKind
    message: str
    detail: str | None = None
    provider: str | None = None
    retryable: bool = False
    status_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "detail": self.detail,
            "provider": self.provider,
            "retryable": self.retryable,
            "statusCode": self.status_code,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ChatErrorInfo:
        try:
            kind = ChatErrorKind(raw.get("kind", ChatErrorKind.GENERIC.value))
        except ValueError:
            kind = ChatErrorKind.GENERIC
        code = raw.get("statusCode")
        return cls(
            kind=kind,
            message=str(raw.get("message", "")),
            detail=None if raw.get("detail") is None else str(raw["detail"]),
            provider=None if raw.get("provider") is None else str(raw["provider"]),
            retryable=bool(raw.get("retryable", False)),
            status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        )


# ---- a chat's channel -------------------------------------------------------


@dataclass(frozen=True)
class StatusChanged:
    kind: ClassVar[EventKind] = EventKind.STATUS
    chat_id: uuid.UUID
    status: ChatStatus
    worker_id: str | None = None  # the daemon that announced it (its watcher skips it)


@dataclass(frozen=True)
class PartDelta:
    """An append-only delta of the running step (text is appended by clients);
    ``seq`` lets a stream that replayed the live step skip what it has."""

    kind: ClassVar[EventKind] = EventKind.PART
    chat_id: uuid.UUID
    index: int
    part: PartJson
    seq: int = 0
    role: str = "assistant"


@dataclass(frozen=True)
class PartsReset:
    """The running step's parts so far are void (their run died): drop them."""

    kind: ClassVar[EventKind] = EventKind.PARTS_RESET
    chat_id: uuid.UUID
    reason: str
    seq: int = 0


@dataclass(frozen=True)
class RetryScheduled:
    kind: ClassVar[EventKind] = EventKind.RETRY
    chat_id: uuid.UUID
    attempt: int
    delay_ms: int
    retrying_at: datetime
    error: ChatErrorInfo


@dataclass(frozen=True)
class ChatFailed:
    kind: ClassVar[EventKind] = EventKind.ERROR
    chat_id: uuid.UUID
    error: ChatErrorInfo


@dataclass(frozen=True)
class MessageAnnounced:
    """A durable message was committed; receivers read it after their cursor."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE
    chat_id: uuid.UUID
    message_id: int


@dataclass(frozen=True)
class QueueChanged:
    kind: ClassVar[EventKind] = EventKind.QUEUE
    chat_id: uuid.UUID


@dataclass(frozen=True)
class HistoryReset:
    kind: ClassVar[EventKind] = EventKind.HISTORY_RESET
    chat_id: uuid.UUID


# ---- an owner's channel -----------------------------------------------------


@dataclass(frozen=True)
class ChatListChanged:
    """One of the owner's chats changed in a way their chat list shows."""

    kind: ClassVar[EventKind] = EventKind.LIST_CHANGE
    chat_id: uuid.UUID
    change: ChatListEventKind


@dataclass(frozen=True)
class TitleFailed:
    """A requested title could not be generated (the waiting mutation returns)."""

    kind: ClassVar[EventKind] = EventKind.TITLE_FAILED
    chat_id: uuid.UUID


# ---- the work channel (daemons) ---------------------------------------------


@dataclass(frozen=True)
class WorkAvailable:
    """A chat became PENDING: look for work now, not at the next poll."""

    kind: ClassVar[EventKind] = EventKind.WAKE
    chat_id: uuid.UUID


@dataclass(frozen=True)
class TitleRequested:
    kind: ClassVar[EventKind] = EventKind.TITLE
    chat_id: uuid.UUID


@dataclass(frozen=True)
class GitRefreshRequested:
    """Ask the daemon watching the workspace to rescan now."""

    kind: ClassVar[EventKind] = EventKind.GIT_REFRESH
    workspace_id: uuid.UUID


# ---- a chat's debug channel -------------------------------------------------


class DebugRunPhase(StrEnum):
    STARTED = "started"
    STEP = "step"
    FINISHED = "finished"


@dataclass(frozen=True)
class DebugRunChanged:
    """A debug run started, recorded a step, or finished, with the columns that
    change as this change left them (``chat_debug_runs``' status, step_count,
    usage, cost_micros, finished_at). A subscriber may read the row several
    changes later; it shows the run as of this change instead, and the steps
    whose index is below ``step_count``. ``status`` None: sent without a state
    (by an older replica), the row is shown as it is read."""

    kind: ClassVar[EventKind] = EventKind.DEBUG_RUN
    chat_id: uuid.UUID
    run_id: uuid.UUID
    phase: DebugRunPhase
    status: str | None = None
    step_count: int = 0
    usage: dict[str, int] | None = None
    cost_micros: int | None = None
    finished_at: datetime | None = None


# ---- a workspace's git channel, sessions, config ----------------------------


@dataclass(frozen=True)
class GitChanged:
    """Repositories whose snapshot changed (read them from workspace_git_snapshots)
    and repositories that disappeared, by root."""

    kind: ClassVar[EventKind] = EventKind.GIT
    workspace_id: uuid.UUID
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    scanned_at: datetime


@dataclass(frozen=True)
class SessionEnd:
    """Whose sockets must close: one token's, or (``token_id`` None) all the user's."""

    kind: ClassVar[EventKind] = EventKind.SESSION_ENDED
    user_id: uuid.UUID
    token_id: uuid.UUID | None = None
    role_changed: bool = False


@dataclass(frozen=True)
class ConfigChanged:
    """Cached configuration of ``what`` (provider, user_config…) ``key`` is stale."""

    kind: ClassVar[EventKind] = EventKind.CONFIG
    what: str
    key: uuid.UUID


@dataclass(frozen=True)
class Resync:
    """Events of this subscriber were dropped (overflow, backend reconnect):
    re-read from the cursor. Made per subscriber, never published."""

    kind: ClassVar[EventKind] = EventKind.RESYNC
    reason: str


ChatEvent = (
    StatusChanged
    | PartDelta
    | PartsReset
    | RetryScheduled
    | ChatFailed
    | MessageAnnounced
    | QueueChanged
    | HistoryReset
)
OwnerEvent = ChatListChanged | TitleFailed
WorkEvent = WorkAvailable | TitleRequested | GitRefreshRequested
Event = (
    ChatEvent
    | OwnerEvent
    | WorkEvent
    | GitChanged
    | DebugRunChanged
    | SessionEnd
    | ConfigChanged
    | Resync
)
