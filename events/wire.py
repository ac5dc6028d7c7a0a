"""The one place events become small JSON strings and back.

Every backend carries strings under 8000 bytes (Postgres NOTIFY's limit), so
payloads hold ids and small fields in camelCase. The hub encodes on publish and
decodes once per message for all local subscribers; the Redis live-part store
writes the same JSON (its script appends the ``seq``) and reads it back here.
Anything that does not decode (an unknown kind, a malformed field) is dropped
with a warning: a subscriber never sees an event it cannot trust.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from db.vocabulary import ChatListEventKind, ChatStatus
from events.payloads import (
    ChatErrorInfo,
    ChatFailed,
    ChatListChanged,
    ConfigChanged,
    DebugRunChanged,
    DebugRunPhase,
    Event,
    EventKind,
    GitChanged,
    GitRefreshRequested,
    HistoryReset,
    MessageAnnounced,
    PartDelta,
    PartsReset,
    QueueChanged,
    Resync,
    RetryScheduled,
    SessionEnd,
    StatusChanged,
    TitleFailed,
    TitleRequested,
    WorkAvailable,
)

log = logging.getLogger(__name__)

Json = dict[str, Any]

# On an owner's channel a list change travels under the change's own name.
_LIST_CHANGES = {k.value: k for k in ChatListEventKind if k is not ChatListEventKind.RESYNC}


def as_json(event: Event) -> Json:
    """The event as the JSON object that goes on the wire."""
    match event:
        case StatusChanged(chat_id, status, worker_id):
            out: Json = {"kind": event.kind.value, "chatId": str(chat_id), "status": status.value}
            if worker_id:
                out["workerId"] = worker_id
            return out
        case PartDelta(chat_id, index, part, seq, role):
            out = {
                "kind": event.kind.value,
                "chatId": str(chat_id),
                "role": role,
                "partIndex": index,
                "part": part,
            }
            if seq:  # the Redis store's script appends it
                out["seq"] = seq
            return out
        case PartsReset(chat_id, reason, seq):
            out = {"kind": event.kind.value, "chatId": str(chat_id), "reason": reason}
            if seq:
                out["seq"] = seq
            return out
        case RetryScheduled(chat_id, attempt, delay_ms, retrying_at, error):
            return {
                "kind": event.kind.value,
                "chatId": str(chat_id),
                "attempt": attempt,
                "delayMs": delay_ms,
                "retryingAt": retrying_at.isoformat(),
                "error": error.to_json(),
            }
        case ChatFailed(chat_id, error):
            return {"kind": event.kind.value, "chatId": str(chat_id), "error": error.to_json()}
        case MessageAnnounced(chat_id, message_id):
            return {"kind": event.kind.value, "chatId": str(chat_id), "messageId": message_id}
        case ChatListChanged(chat_id, change):
            return {"kind": change.value, "chatId": str(chat_id)}
        case (
            QueueChanged(chat_id)
            | HistoryReset(chat_id)
            | TitleFailed(chat_id)
            | WorkAvailable(chat_id)
            | TitleRequested(chat_id)
        ):
            return {"kind": event.kind.value, "chatId": str(chat_id)}
        case GitRefreshRequested(workspace_id):
            return {"kind": event.kind.value, "workspaceId": str(workspace_id)}
        case GitChanged(workspace_id, changed, removed, scanned_at):
            return {
                "kind": event.kind.value,
                "workspaceId": str(workspace_id),
                "changed": list(changed),
                "removed": list(removed),
                "scannedAt": scanned_at.isoformat(),
            }
        case DebugRunChanged(chat_id, run_id, phase, status):
            out = {
                "kind": event.kind.value,
                "chatId": str(chat_id),
                "runId": str(run_id),
                "phase": phase.value,
            }
            if status is not None:
                finished_at = event.finished_at
                out |= {
                    "status": status,
                    "stepCount": event.step_count,
                    "usage": event.usage,
                    "costMicros": event.cost_micros,
                    "finishedAt": None if finished_at is None else finished_at.isoformat(),
                }
            return out
        case SessionEnd(user_id, token_id, role_changed):
            return {
                "kind": event.kind.value,
                "userId": str(user_id),
                "tokenId": None if token_id is None else str(token_id),
                "roleChanged": role_changed,
            }
        case ConfigChanged(what, key):
            return {"kind": event.kind.value, "what": what, "id": str(key)}
        case Resync(reason):
            return {"kind": event.kind.value, "reason": reason}
    raise TypeError(f"not a bus event: {event!r}")


def encode(event: Event) -> bytes:
    return orjson.dumps(as_json(event))


def _chat(raw: Json) -> uuid.UUID:
    return uuid.UUID(str(raw["chatId"]))


def _seq(raw: Json) -> int:
    value = raw.get("seq") or 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _message_id(raw: Json) -> int:
    """0 (announces nothing) when absent or malformed."""
    value = raw.get("messageId")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _roots(value: Any) -> tuple[str, ...]:
    return tuple(str(r) for r in value or [])


def _error(raw: Json) -> ChatErrorInfo:
    error = raw.get("error")
    return ChatErrorInfo.from_json(error if isinstance(error, dict) else {})


def _token(raw: Json) -> uuid.UUID | None:
    token = raw.get("tokenId")
    return None if token is None else uuid.UUID(str(token))


def _whole(value: Any) -> int:
    """An integer field; anything else makes the event malformed."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


def _debug_run(raw: Json) -> DebugRunChanged:
    """With the run's state as the change left it, when the publisher sent one."""
    event = DebugRunChanged(_chat(raw), uuid.UUID(str(raw["runId"])), DebugRunPhase(raw["phase"]))
    if raw.get("status") is None:
        return event
    usage = raw.get("usage")
    cost = raw.get("costMicros")
    finished_at = raw.get("finishedAt")
    return DebugRunChanged(
        event.chat_id,
        event.run_id,
        event.phase,
        status=str(raw["status"]),
        step_count=_whole(raw.get("stepCount")),
        usage=None if usage is None else {str(k): _whole(v) for k, v in dict(usage).items()},
        cost_micros=None if cost is None else _whole(cost),
        finished_at=None if finished_at is None else datetime.fromisoformat(str(finished_at)),
    )


def _list_change(change: ChatListEventKind, raw: Json) -> Event:
    return ChatListChanged(_chat(raw), change)


_DECODERS: dict[str, Callable[[Json], Event]] = {
    EventKind.STATUS: lambda r: StatusChanged(
        _chat(r), ChatStatus(r["status"]), r.get("workerId") or None
    ),
    EventKind.PART: lambda r: PartDelta(
        _chat(r), int(r["partIndex"]), dict(r["part"]), _seq(r), str(r.get("role") or "assistant")
    ),
    EventKind.PARTS_RESET: lambda r: PartsReset(_chat(r), str(r.get("reason") or ""), _seq(r)),
    EventKind.RETRY: lambda r: RetryScheduled(
        _chat(r),
        int(r["attempt"]),
        int(r["delayMs"]),
        datetime.fromisoformat(str(r["retryingAt"])),
        _error(r),
    ),
    EventKind.ERROR: lambda r: ChatFailed(_chat(r), _error(r)),
    EventKind.MESSAGE: lambda r: MessageAnnounced(_chat(r), _message_id(r)),
    EventKind.QUEUE: lambda r: QueueChanged(_chat(r)),
    EventKind.HISTORY_RESET: lambda r: HistoryReset(_chat(r)),
    EventKind.TITLE_FAILED: lambda r: TitleFailed(_chat(r)),
    EventKind.WAKE: lambda r: WorkAvailable(_chat(r)),
    EventKind.TITLE: lambda r: TitleRequested(_chat(r)),
    EventKind.GIT_REFRESH: lambda r: GitRefreshRequested(uuid.UUID(str(r["workspaceId"]))),
    EventKind.GIT: lambda r: GitChanged(
        uuid.UUID(str(r["workspaceId"])),
        _roots(r.get("changed")),
        _roots(r.get("removed")),
        datetime.fromisoformat(str(r["scannedAt"])),
    ),
    EventKind.DEBUG_RUN: lambda r: _debug_run(r),
    EventKind.SESSION_ENDED: lambda r: SessionEnd(
        uuid.UUID(str(r["userId"])), _token(r), bool(r.get("roleChanged", False))
    ),
    EventKind.CONFIG: lambda r: ConfigChanged(str(r["what"]), uuid.UUID(str(r["id"]))),
    # Made by subscriptions; published only to make every subscriber re-read.
    EventKind.RESYNC: lambda r: Resync(str(r.get("reason") or "events were dropped")),
    **{name: partial(_list_change, change) for name, change in _LIST_CHANGES.items()},
}


def from_json(raw: Any) -> Event | None:
    """The event of a decoded JSON value; None (logged) when it is not one."""
    if not isinstance(raw, dict):
        log.warning("dropping a non-object event")
        return None
    decode_one = _DECODERS.get(str(raw.get("kind")))
    if decode_one is None:
        log.warning("dropping an event of unknown kind %.40r", raw.get("kind"))
        return None
    try:
        return decode_one(raw)
    except (KeyError, ValueError, TypeError):
        log.warning("dropping a malformed %s event", raw.get("kind"))
        return None


def decode(message: str | bytes) -> Event | None:
    """The event a published string holds; None (logged) when it holds none."""
    try:
        raw = orjson.loads(message)
    except orjson.JSONDecodeError:
        log.warning("dropping a non-JSON event")
        return None
    return from_json(raw)
