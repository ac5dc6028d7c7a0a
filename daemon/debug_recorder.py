"""Recording model calls for the debug log: a run per turn, title, compaction or
explore child, a step per model call, each attempt inside its step.

Recording wraps one place, ``LlmClient.stream`` (``StepRecording.wrap``): every
client, the SDK ones and the scripted one, is recorded the same way and no
client knows about it. When logging does not apply to the chat the recorder is
off: ``wrap`` hands the client back untouched and nothing is written. A
recording failure is logged, never the turn's. Bodies are normalised here
(message parts, tool definitions, options; reply parts, tool calls, finish
reason) and redacted by ``db.debug_runs`` as they are written.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from daemon.providers import (
    Finish,
    LlmClient,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
)
from db import debug_runs
from db.costing import ModelPrices, cost_micros
from db.model_resolution import ResolvedModel
from db.models import DebugRunKind, DebugStatus
from db.parts import parts_to_json
from db.redaction import redact_body
from db.vocabulary import ChatErrorKind
from events.announcer import ChatAnnouncer
from events.payloads import DebugRunPhase

log = logging.getLogger(__name__)

STREAM = "stream"
GENERATE = "generate"


def _now() -> datetime:
    return datetime.now(UTC)


def request_json(request: ModelRequest) -> dict[str, Any]:
    """The request as the debug log shows it: the system prompt is the first
    message (role ``system``), files are referenced by id, never inlined."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "parts": [{"type": "text", "text": request.system}]})
    messages += [{"role": m.role, "parts": parts_to_json(m.parts)} for m in request.messages]
    return {
        "model": request.model,
        "messages": messages,
        "tools": [
            {"name": t.name, "description": t.description, "inputSchema": t.parameters}
            for t in request.tools
        ],
        "options": {
            "maxOutputTokens": request.max_output_tokens,
            "temperature": request.temperature,
        },
    }


def error_json(error: BaseException) -> dict[str, Any]:
    """The ``ChatError`` shape; a provider's raw body (``detail``) is kept only
    when it is JSON (redacted), else replaced whole."""
    if isinstance(error, ProviderError):
        detail = redact_body(error.detail)
        return {
            "kind": error.kind.value,
            "message": error.message,
            "detail": detail if detail is None or isinstance(detail, str) else _text(detail),
            "provider": error.provider,
            "retryable": error.retryable,
            "statusCode": error.status_code,
        }
    interrupted = isinstance(error, asyncio.CancelledError | GeneratorExit)
    return {
        "kind": ChatErrorKind.GENERIC.value,
        "message": "Interrupted." if interrupted else f"{type(error).__name__}: {error}"[:500],
        "detail": None,
        "provider": None,
        "retryable": False,
        "statusCode": None,
    }


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def status_of(failure: BaseException | None) -> DebugStatus:
    if failure is None:
        return DebugStatus.COMPLETED
    if isinstance(failure, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
        return DebugStatus.INTERRUPTED
    return DebugStatus.ERROR


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    if more is None:
        return total
    if total is None:
        return more
    return Usage(
        input_tokens=total.input_tokens + more.input_tokens,
        output_tokens=total.output_tokens + more.output_tokens,
        reasoning_tokens=total.reasoning_tokens + more.reasoning_tokens,
        cache_read_tokens=total.cache_read_tokens + more.cache_read_tokens,
        cache_write_tokens=total.cache_write_tokens + more.cache_write_tokens,
    )


@dataclass
class _Reply:
    """What the current attempt streamed."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta | ReasoningDelta):
            kind = "text" if isinstance(event, TextDelta) else "reasoning"
            if self.parts and self.parts[-1]["type"] == kind:
                self.parts[-1]["text"] += event.text
            else:
                self.parts.append({"type": kind, "text": event.text})
        elif isinstance(event, ToolCall):
            self.tool_calls.append(
                {
                    "type": "tool-call",
                    "toolCallId": event.tool_call_id,
                    "toolName": event.tool_name,
                    "args": event.args,
                }
            )
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finish):
            self.finish_reason = event.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "parts": self.parts,
            "toolCalls": self.tool_calls,
            "finishReason": self.finish_reason,
            "usage": debug_runs.usage_json(self.usage),
        }


class _RecordingClient:
    """``LlmClient`` around another: each ``stream`` call is one attempt of the step."""

    def __init__(self, inner: LlmClient, step: StepRecording) -> None:
        self.inner = inner
        self.provider = inner.provider
        self._step = step

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self._step.attempt_started()
        try:
            async for event in self.inner.stream(request):
                self._step.observe(event)
                yield event
        except BaseException as exc:
            self._step.attempt_ended(exc)
            raise
        self._step.attempt_ended(None)


class StepRecording:
    """One model call; ``end`` (or leaving ``async with``) writes it."""

    def __init__(
        self, recorder: DebugRecorder, request: ModelRequest, operation: str, index: int
    ) -> None:
        self._recorder = recorder
        self._request = request
        self._operation = operation
        self._index = index
        self._started_at = _now()
        self._clock = time.perf_counter()
        self._attempts: list[dict[str, Any]] = []
        self._attempt_clock = 0.0
        self._reply = _Reply()
        self._ended = False

    def wrap(self, client: LlmClient) -> LlmClient:
        return _RecordingClient(client, self) if self._recorder.active else client

    def attempt_started(self) -> None:
        self._reply = _Reply()  # a retry starts the reply over, as the step does
        self._attempt_clock = time.perf_counter()
        self._attempts.append({"number": len(self._attempts) + 1, "startedAt": _now().isoformat()})

    def observe(self, event: StreamEvent) -> None:
        self._reply.add(event)

    def attempt_ended(self, failure: BaseException | None) -> None:
        attempt = self._attempts[-1]
        attempt["durationMs"] = int((time.perf_counter() - self._attempt_clock) * 1000)
        attempt["status"] = status_of(failure).name
        attempt["error"] = None if failure is None else error_json(failure)

    async def end(self, failure: BaseException | None = None) -> None:
        if self._ended or not self._recorder.active:
            return
        self._ended = True
        usage = self._reply.usage
        record = debug_runs.StepRecord(
            index=self._index,
            operation=self._operation,
            status=status_of(failure),
            attempts=self._attempts,
            started_at=self._started_at,
            duration_ms=int((time.perf_counter() - self._clock) * 1000),
            usage=usage,
            request=request_json(self._request),
            response=self._reply.to_json() if self._attempts else None,
            error=None if failure is None else error_json(failure),
        )
        await asyncio.shield(self._recorder.step_ended(record))

    async def __aenter__(self) -> StepRecording:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        failure: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.end(failure)


class DebugRecorder:
    """One run; ``DebugRecorder.off()`` when logging does not apply."""

    def __init__(
        self,
        run_id: uuid.UUID | None,
        chat_id: uuid.UUID | None,
        events: ChatAnnouncer | None,
        prices: ModelPrices | None,
    ) -> None:
        self.run_id = run_id
        self.chat_id = chat_id
        self._events = events
        self._prices = prices
        self._steps = 0
        self._usage: Usage | None = None
        self._cost: int | None = None
        self._unpriced = False
        self._finished = False

    @classmethod
    def off(cls) -> DebugRecorder:
        return cls(None, None, None, None)

    @property
    def active(self) -> bool:
        return self.run_id is not None

    @classmethod
    async def start(
        cls,
        chat_id: uuid.UUID,
        kind: DebugRunKind,
        model: ResolvedModel,
        events: ChatAnnouncer | None,
        worker_id: uuid.UUID | None,
    ) -> DebugRecorder:
        """A recording run when logging applies to the chat (one query decides)."""
        try:
            target = await debug_runs.target(chat_id)
            if target is None or not target.applies:
                return cls.off()
            if kind is DebugRunKind.CHAT_TURN and target.explore:
                kind = DebugRunKind.EXPLORE
            run = debug_runs.NewRun(
                id=uuid.uuid4(),
                target=target,
                kind=kind,
                provider=model.provider_kind.value,
                model=model.model,
                model_config_id=model.model_config_id,
                worker_id=worker_id,
                started_at=_now(),
            )
            state = await debug_runs.open_run(run)
        except Exception:
            log.warning("opening a debug run failed", exc_info=True)
            return cls.off()
        recorder = cls(run.id, chat_id, events, model.prices)
        await recorder._announce(DebugRunPhase.STARTED, state)
        return recorder

    def step(self, request: ModelRequest, operation: str = STREAM) -> StepRecording:
        index = self._steps
        self._steps += 1
        return StepRecording(self, request, operation, index)

    async def step_ended(self, record: debug_runs.StepRecord) -> None:
        assert self.run_id is not None
        self._usage = add_usage(self._usage, record.usage)
        if record.usage is not None and self._prices is not None:
            cost = cost_micros(self._prices, record.usage)
            if cost is None:
                self._unpriced = True
            else:
                self._cost = (self._cost or 0) + cost
        try:
            state = await debug_runs.write_step(self.run_id, record, self._usage, self.cost)
        except Exception:
            log.warning("writing a debug step failed", exc_info=True)
            return
        await self._announce(DebugRunPhase.STEP, state)

    @property
    def cost(self) -> int | None:
        """Micro-USD of the run's calls; None when the model is not priced."""
        return None if self._unpriced else self._cost

    async def finish(self, failure: BaseException | None = None) -> None:
        """COMPLETED, ERROR, or INTERRUPTED (a cancelled turn); written even while
        the task is being cancelled."""
        if self._finished or self.run_id is None:
            return
        self._finished = True
        error = None if failure is None else error_json(failure)
        await asyncio.shield(self._close(status_of(failure), error))

    async def _close(self, status: DebugStatus, error: dict[str, Any] | None) -> None:
        assert self.run_id is not None
        try:
            state = await debug_runs.close_run(
                self.run_id, status, _now(), self._usage, self.cost, error
            )
        except Exception:
            log.warning("closing a debug run failed", exc_info=True)
            return
        await self._announce(DebugRunPhase.FINISHED, state)

    async def _announce(self, phase: DebugRunPhase, state: debug_runs.RunState | None) -> None:
        """``state``: the run as the write left it; None when the write changed
        nothing (the run is gone, or the stale sweep ended it and said so)."""
        if self._events is None or self.run_id is None or self.chat_id is None or state is None:
            return
        try:
            await announce(self._events, self.chat_id, self.run_id, phase, state)
        except Exception:
            log.warning("announcing a debug run failed", exc_info=True)


async def announce(
    events: ChatAnnouncer,
    chat_id: uuid.UUID,
    run_id: uuid.UUID,
    phase: DebugRunPhase,
    state: debug_runs.RunState,
) -> None:
    """The change with the run's state as it committed it (see ``RunState``)."""
    await events.debug_run(
        chat_id,
        run_id,
        phase,
        status=state.status.value,
        step_count=state.step_count,
        usage=state.usage,
        cost_micros=state.cost_micros,
        finished_at=state.finished_at,
    )


async def close_stale(events: ChatAnnouncer | None, stale_after_s: float) -> int:
    """Runs nothing records any more (a crashed or killed daemon) end INTERRUPTED."""
    before = datetime.fromtimestamp(time.time() - stale_after_s, UTC)
    closed = await debug_runs.close_stale_runs(before)
    for run in closed:
        if events is not None:
            try:
                await announce(events, run.chat_id, run.run_id, DebugRunPhase.FINISHED, run.state)
            except Exception:
                log.warning("announcing a closed debug run failed", exc_info=True)
    if closed:
        log.info("closed %d abandoned debug run(s) as interrupted", len(closed))
    return len(closed)
