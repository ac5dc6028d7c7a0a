"""Debug runs and steps: what a chat's model calls sent and received.

Bodies are stored redacted (``db.redaction``) and decoded here from their JSON:
message parts as the ``MessagePart`` union, usage as ``Usage``, errors as
``ChatError``. A run's steps come through one dataloader per page.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from db import parts as p
from db.models import DebugRun as DebugRunRow
from db.models import DebugRunKind, DebugStatus
from db.models import DebugStep as DebugStepRow
from db.vocabulary import MessageRole
from resolvers import debug_runs
from schema.connection import Connection, connection_of
from schema.info import Info
from schema.message import MessagePart, ToolCallPart, Usage
from schema.node import Node, global_id_field, row_is

if TYPE_CHECKING:
    from schema.chat import Chat, ChatError

# schema.chat places Chat.debugRuns from here: its types are imported lazily.
LazyChatError = Annotated["ChatError", strawberry.lazy("schema.chat")]


def chat_error(raw: Any) -> ChatError | None:
    from schema.chat import chat_error as decode

    return decode(raw) if isinstance(raw, dict) else None


DebugRunKindEnum = strawberry.enum(DebugRunKind, name="DebugRunKind")
DebugStatusEnum = strawberry.enum(DebugStatus, name="DebugStatus")


def usage_of(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        reasoning_tokens=int(raw.get("reasoning_tokens") or 0),
        cache_read_tokens=int(raw.get("cache_read_tokens") or 0),
        cache_write_tokens=int(raw.get("cache_write_tokens") or 0),
    )


def parts_of(raw: Any) -> list[MessagePart]:
    """Stored parts; one that no longer decodes (redaction replaced a field) is
    shown as its JSON text rather than failing the whole run."""
    out: list[Any] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(p.from_json(item))
        except (KeyError, TypeError, ValueError, AttributeError):
            out.append(p.TextPart(str(item)))
    return out


def _millis(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else int((end - start).total_seconds() * 1000)


@strawberry.type(description="One message of a request, as the model received it.")
class DebugMessage:
    role: MessageRole
    parts: list[MessagePart]


@strawberry.type
class DebugToolDefinition:
    name: str
    description: str | None
    input_schema: JSON


@strawberry.type(description="The normalised request; secrets redacted.")
class DebugRequest:
    model: str
    messages: list[DebugMessage]
    tools: list[DebugToolDefinition]
    options: JSON


@strawberry.type(description="The normalised reply of the last attempt; secrets redacted.")
class DebugResponse:
    parts: list[MessagePart]
    tool_calls: list[ToolCallPart]
    finish_reason: str | None
    usage: Usage | None


@strawberry.type(description="One attempt of a step (a retried call has several).")
class DebugAttempt:
    number: int
    started_at: datetime | None
    duration_ms: int | None
    status: DebugStatus
    error: LazyChatError | None


def _role(value: Any) -> MessageRole:
    try:
        return MessageRole(value)
    except ValueError:
        return MessageRole.USER


def _request(raw: Any) -> DebugRequest:
    body = raw if isinstance(raw, dict) else {}
    messages = [
        DebugMessage(role=_role(m.get("role")), parts=parts_of(m.get("parts")))
        for m in body.get("messages") or []
        if isinstance(m, dict)
    ]
    tools = [
        DebugToolDefinition(
            name=str(t.get("name", "")),
            description=t.get("description"),
            input_schema=cast(JSON, t.get("inputSchema") or {}),
        )
        for t in body.get("tools") or []
        if isinstance(t, dict)
    ]
    return DebugRequest(
        model=str(body.get("model", "")),
        messages=messages,
        tools=tools,
        options=cast(JSON, body.get("options") or {}),
    )


def _response(raw: Any) -> DebugResponse | None:
    if not isinstance(raw, dict):
        return None
    calls = [c for c in parts_of(raw.get("toolCalls")) if isinstance(c, p.ToolCallPart)]
    return DebugResponse(
        parts=parts_of(raw.get("parts")),
        tool_calls=cast(list[ToolCallPart], calls),
        finish_reason=raw.get("finishReason"),
        usage=usage_of(raw.get("usage")),
    )


def _attempt(raw: dict[str, Any]) -> DebugAttempt:
    started = raw.get("startedAt")
    try:
        status = DebugStatus[str(raw.get("status", "COMPLETED"))]
    except KeyError:
        status = DebugStatus.ERROR
    return DebugAttempt(
        number=int(raw.get("number") or 0),
        started_at=datetime.fromisoformat(started) if isinstance(started, str) else None,
        duration_ms=raw.get("durationMs"),
        status=status,
        error=chat_error(raw.get("error")),
    )


@strawberry.type(description="One model call of a run, with its attempts.")
class DebugStep:
    operation: str = strawberry.field(description="stream | generate")
    status: DebugStatus
    started_at: datetime

    @strawberry.field(description="0 for the run's first call.")
    def index(self, root: DebugStepRow) -> int:
        return root.step_index

    @strawberry.field(description="How many times the call was tried.")
    def attempts(self, root: DebugStepRow) -> int:
        return len(root.attempts or [])

    @strawberry.field(description="Each attempt's timing and error.")
    def attempt_details(self, root: DebugStepRow) -> list[DebugAttempt]:
        return [_attempt(a) for a in root.attempts or [] if isinstance(a, dict)]

    @strawberry.field
    def duration_ms(self, root: DebugStepRow) -> int | None:
        return root.duration_ms

    @strawberry.field
    def usage(self, root: DebugStepRow) -> Usage | None:
        return usage_of(root.usage)

    @strawberry.field(description="Normalised, secrets redacted.")
    def request(self, root: DebugStepRow) -> DebugRequest:
        return _request(root.request)

    @strawberry.field(description="Null when no attempt was made.")
    def response(self, root: DebugStepRow) -> DebugResponse | None:
        return _response(root.response)

    @strawberry.field
    def error(self, root: DebugStepRow) -> LazyChatError | None:
        return chat_error(root.error)

    is_type_of = row_is(DebugStepRow)


def token_summary(usage: Usage | None) -> str:
    """``3→5 tok``: prompt tokens (cached ones included) → output tokens."""
    if usage is None:
        return "0→0 tok"
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return f"{prompt}→{usage.output_tokens} tok"


@strawberry.type(description="A chat turn, title generation, compaction or explore child.")
class DebugRun(Node):
    id: strawberry.ID = global_id_field("DebugRun")
    kind: DebugRunKind
    status: DebugStatus
    model: str | None
    provider: str | None
    started_at: datetime
    finished_at: datetime | None
    cost_micros: int | None = strawberry.field(
        description="Micro-USD of the run's calls; null when the model is not priced."
    )

    @strawberry.field
    async def chat(self, root: DebugRunRow) -> Annotated[Chat, strawberry.lazy("schema.chat")]:
        return cast("Chat", await debug_runs.run_chat(root))

    @strawberry.field(description="Null while in progress.")
    def duration_ms(self, root: DebugRunRow) -> int | None:
        return _millis(root.started_at, root.finished_at)

    @strawberry.field(description="All the run's calls together.")
    def usage(self, root: DebugRunRow) -> Usage | None:
        return usage_of(root.usage)

    @strawberry.field(description='Compact usage, e.g. "3→5 tok" (prompt→output).')
    def token_summary(self, root: DebugRunRow) -> str:
        return token_summary(usage_of(root.usage))

    @strawberry.field(description="The run's model calls in order.")
    async def steps(self, root: DebugRunRow, info: Info) -> list[DebugStep]:
        return cast(list[DebugStep], await info.context.loaders.debug_steps.load(root.id))

    @strawberry.field(description="Why the run failed or stopped, when it did.")
    def error(self, root: DebugRunRow) -> LazyChatError | None:
        return chat_error(root.error)

    is_type_of = row_is(DebugRunRow)


async def _chat_debug_runs(
    root: Any, first: int | None = None, after: str | None = None
) -> Connection[DebugRun]:
    page = await debug_runs.chat_debug_runs(root, first, after)
    return cast(Connection[DebugRun], connection_of(page))


def chat_debug_runs_field() -> Any:
    """``Chat.debugRuns``."""
    return strawberry.field(
        resolver=_chat_debug_runs,
        description="Debug runs of this chat, newest first (50 by default, at most 100 "
        "per page); empty unless debug logging applied.",
    )
