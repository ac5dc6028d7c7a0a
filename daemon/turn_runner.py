"""One agent turn: prompt, stream, persist each step, run tools, retry, finish.

Each model step becomes one assistant message (its parts, usage, cost, runtime)
and each tool result one tool message, written when the step ends; deltas in
between only go to live subscribers. Retryable provider errors wait 1 s
doubling to 60 s, at most 25 attempts, each announced as RetryScheduled. Each
model call holds its worst case first and settles its cost with its message
(``daemon.spending``); the chat is settled by ``daemon.turn_endings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tortoise.transactions import in_transaction

from daemon import claims, compaction, prompt, spending
from daemon.chat_context import load_chat_context
from daemon.debug_recorder import DebugRecorder
from daemon.providers import (
    InlineFile,
    LlmClient,
    ModelRequest,
    ProviderError,
    Usage,
    classify,
    make_client,
)
from daemon.step_stream import StepStream
from daemon.tool_policy import STOP_AFTER
from daemon.turn import Turn as Turn
from daemon.turn import TurnSettings as TurnSettings
from daemon.turn import owns, publish, run_of
from daemon.turn_endings import finish
from db import spend
from db.model_resolution import ModelUnavailable, ResolvedModel, resolve_model
from db.models import Chat, ChatMessage, DebugRunKind
from db.text_rules import storable
from db.vocabulary import ChatErrorKind, MessageRole
from events.announcer import ChatAnnouncer
from events.live_parts import live_parts
from events.payloads import ChatErrorInfo

log = logging.getLogger(__name__)

# A turn that ends at one of these leaves the chat REQUIRES_ACTION: a question is
# in front of the user, and their next message (the answer) starts the next turn.
AWAIT_USER_AFTER = STOP_AFTER

OWNER_DISABLED_MESSAGE = "The chat's owner is disabled; the chat does not run."


async def _take_over_live_parts(turn: Turn) -> None:
    """A run that takes over a chat whose previous run died starts with
    ``parts_reset``: clients drop the text that run streamed (this run streams
    the step again from its start)."""
    store = live_parts(turn.events.hub if turn.events is not None else None)
    try:
        if await store.takeover(turn.chat_id, run_of(turn)):
            log.info("dropped a dead run's live parts", extra={"chat_id": str(turn.chat_id)})
    except Exception:
        log.warning("resetting live parts failed", exc_info=True)


def spend_error(error: spend.SpendRefused, provider: str | None) -> dict[str, Any]:
    """A refused hold as ``lastError``: USAGE_LIMIT, or CONFIG for an unpriced model."""
    limited = isinstance(error, spend.UsageLimitExceeded)
    return {
        "kind": (ChatErrorKind.USAGE_LIMIT if limited else ChatErrorKind.CONFIG).value,
        "message": str(error),
        "detail": None,
        "provider": provider,
        "retryable": False,
        "statusCode": None,
    }


def error_payload(error: ProviderError | ModelUnavailable, provider: str | None) -> dict[str, Any]:
    """The ``ChatError`` shape; ``provider`` names the provider when the error
    itself does not (it always does once a model config was found)."""
    if isinstance(error, ModelUnavailable):
        return {
            "kind": error.kind.value,
            "message": error.message,
            "detail": None,
            "provider": error.provider or provider,
            "retryable": False,
            "statusCode": None,
        }
    return {  # a provider's words: as ``last_error`` will store them (no NUL)
        "kind": error.kind.value,
        "message": storable(error.message),
        "detail": storable(error.detail),
        "provider": error.provider or provider,
        "retryable": error.retryable,
        "statusCode": error.status_code,
    }


async def _persist(
    turn: Turn,
    role: MessageRole,
    parts: list[dict[str, Any]],
    *,
    runtime_ms: int | None = None,
    paid: tuple[spend.Hold, spend.Charge] | None = None,
) -> int | None:
    """Write a message only while the turn may (interrupted output is kept).

    ``paid`` settles the step's hold with its charge in the same transaction; a
    step's spend is recorded even when its message may not be (it was billed)."""
    if not parts and paid is None:
        return None
    at = datetime.now(UTC)
    columns: dict[str, Any] = {} if paid is None else paid[1].columns()
    message: ChatMessage | None = None
    async with in_transaction() as conn:
        chat = await Chat.filter(id=turn.chat_id).using_db(conn).select_for_update().first()
        owned = chat is not None and owns(turn, chat)
        if chat is not None and parts and (owned or turn.stop_reason == "interrupted"):
            message = await ChatMessage.create(
                chat_id=turn.chat_id,
                role=role,
                parts=parts,
                model_config_id=paid[1].model_config_id if paid else turn.model_config_id,
                runtime_ms=runtime_ms,
                created_at=at,
                using_db=conn,
                **columns,
            )
        if paid is not None:
            await spending.settle(
                conn, paid[0], replace(paid[1], at=at), duration_ms=runtime_ms or 0
            )
    if message is None:
        return None
    message_id = message.id
    await publish(turn, "message", lambda a: a.message(turn.chat_id, message_id))
    return int(message_id)


async def _stream_step(
    turn: Turn,
    client: LlmClient,
    request: ModelRequest,
    step: StepStream,
    before_retry: Callable[[], Awaitable[ModelRequest]] | None = None,
) -> Usage | None:
    """One model call with retries; returns its usage. ``before_retry`` pays for
    a failed attempt and gives the request to send again."""
    settings = turn.settings
    attempt = 0
    while True:
        usage: Usage | None = None
        try:
            async for event in client.stream(request):
                if isinstance(event, Usage):
                    usage = event
                else:
                    step.add(event)
            await step.flush()
            return usage
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc if isinstance(exc, ProviderError) else classify(exc, client.provider)
            attempt += 1
            if not error.retryable or attempt >= settings.retry_attempts:
                await step.flush()
                raise error from (None if error is exc else exc)
            delay = min(settings.retry_base_s * 2 ** (attempt - 1), settings.retry_max_s)
            at = datetime.now(UTC) + timedelta(seconds=delay)
            if before_retry is not None:
                request = await before_retry()
            await step.reset()
            payload = error_payload(error, client.provider)
            info = ChatErrorInfo.from_json(payload)
            await publish(
                turn,
                "retry",
                partial(
                    ChatAnnouncer.retry,
                    chat_id=turn.chat_id,
                    attempt=attempt,
                    delay_ms=int(delay * 1000),
                    retrying_at=at,
                    error=info,
                ),
            )
            await asyncio.sleep(delay)


async def _run_tools(turn: Turn, step: StepStream) -> bool:
    """Run the step's calls; True when one of them ends the turn (plan mode,
    a question for the user)."""
    stop = False
    for call in step.tool_calls:
        result, is_error = await turn.tools.run(
            call.tool_name, call.args, turn, turn.policy.refusal
        )
        if not is_error and turn.policy.stops_turn(call.tool_name):
            stop = True
            turn.awaiting_user = turn.awaiting_user or call.tool_name in AWAIT_USER_AFTER
        part = {
            "type": "tool-result",
            "toolCallId": call.tool_call_id,
            "toolName": call.tool_name,
            "result": result,
            "isError": is_error,
        }
        await _persist(turn, MessageRole.TOOL, [part])
    return stop


async def _steps(turn: Turn, model: ResolvedModel) -> None:
    client = make_client(
        model.provider_kind.value,
        api_key=model.api_key,
        base_url=model.base_url,
        connect_timeout=turn.settings.connect_timeout_s,
    )
    # Debug logging, when it applies to the chat: one run for the turn (EXPLORE for
    # an explore child), closed INTERRUPTED when the turn is cancelled.
    recorder = await DebugRecorder.start(
        turn.chat_id, DebugRunKind.CHAT_TURN, model, turn.events, turn.worker_id
    )
    try:
        await _run_steps(turn, model, client, recorder)
    except BaseException as exc:
        await recorder.finish(exc)
        raise
    else:
        await recorder.finish()
    finally:
        close = getattr(client, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def _run_steps(
    turn: Turn, model: ResolvedModel, client: LlmClient, recorder: DebugRecorder
) -> None:
    await load_chat_context(turn)
    system_plan = turn.plan_path
    system = (await prompt.for_turn(turn)).text
    files: dict[uuid.UUID, InlineFile] = {}  # attachments read once per turn
    payer = spending.Payer(turn.owner_id, turn.chat_id, turn.root_id or turn.chat_id)
    for _ in range(turn.settings.max_steps):
        if turn.plan_path != system_plan:  # create_workspace gave the chat its plan file
            system_plan = turn.plan_path
            system = (await prompt.for_turn(turn)).text
        request = ModelRequest(
            model=model.model,
            system=system,
            messages=await prompt.history(turn.chat_id, files),
            tools=turn.tools.specs(turn.policy.allows),
            max_output_tokens=model.max_output_tokens,
        )
        held, request = await spending.reserve(payer, model, request, turn.worker_id)
        step = StepStream(turn.chat_id, turn.events, turn.settings.coalesce_s, run_of(turn))
        started = time.perf_counter()
        recording = recorder.step(request)

        async def pay_and_hold_again(step: StepStream = step) -> ModelRequest:
            """The failed attempt's streamed output was billed: settle it, and
            hold anew for the retry (a retry is a call of its own)."""
            nonlocal held, request
            cut = spending.cut_usage(held, request, model, step.parts)
            if cut is None:
                return request  # nothing streamed: the hold still covers the retry
            paid = (held, spending.charge(payer, model, cut))
            held = spend.NO_HOLD
            await asyncio.shield(_persist(turn, MessageRole.ASSISTANT, [], paid=paid))
            held, request = await spending.reserve(payer, model, request, turn.worker_id)
            return request

        try:
            usage = await _stream_step(
                turn, recording.wrap(client), request, step, pay_and_hold_again
            )
        except BaseException as exc:
            await recording.end(exc)
            cut = spending.cut_usage(held, request, model, step.parts)
            if cut is None:
                await asyncio.shield(spend.release(held))
            await step.close()
            paid = None if cut is None else (held, spending.charge(payer, model, cut))
            await _persist_partial(turn, step, started, paid)
            # Handed back: the next run streams the step again; drop this one's.
            await asyncio.shield(step.end(discarded=turn.stop_reason == "lost"))
            raise
        billed = spending.billed_usage(usage, held, request, model)
        if usage is None:
            log.warning(
                "the provider reported no usage; the step is counted at its hold's worst "
                "case under a limit, else not at all",
                extra={"chat_id": str(turn.chat_id), "model": model.model},
            )
        paid = None if billed is None else (held, spending.charge(payer, model, billed))
        if paid is None:
            await spend.release(held)
        try:
            await step.close()
            await recording.end()
        finally:
            # The call was billed: its message and spend are written even when the
            # turn is cancelled meanwhile (a rolled-back settle would leave the hold
            # reserved, renewed by this worker's heartbeat for as long as it runs).
            runtime_ms = int((time.perf_counter() - started) * 1000)
            await asyncio.shield(
                _persist(turn, MessageRole.ASSISTANT, step.parts, runtime_ms=runtime_ms, paid=paid)
            )
        await step.end()
        if not step.tool_calls:
            load = compaction.pressure(usage, model)
            if load is not None and load.due:
                await compaction.compact(
                    turn.chat_id, model, client, load, turn.events, payer, turn.worker_id
                )
            return
        if await _run_tools(turn, step):
            return


async def _persist_partial(
    turn: Turn,
    step: StepStream,
    started: float,
    paid: tuple[spend.Hold, spend.Charge] | None = None,
) -> None:
    """Output already streamed stays: as a message, when the turn may still write.
    ``paid`` (what the cut call cost) is settled even when nothing is kept."""
    parts = step.parts if turn.stop_reason != "lost" else []
    if parts or paid is not None:
        runtime_ms = int((time.perf_counter() - started) * 1000)
        await asyncio.shield(
            _persist(turn, MessageRole.ASSISTANT, parts, runtime_ms=runtime_ms, paid=paid)
        )


async def run_turn(turn: Turn) -> bool:
    """Run to the end, then settle the chat's status (unless someone else owns it).

    True when the turn succeeded (the caller may then title the chat)."""
    error: dict[str, Any] | None = None
    running = str(turn.worker_id)
    await publish(
        turn, "status", lambda a: a.status(turn.owner_id, turn.chat_id, "running", running)
    )
    await _take_over_live_parts(turn)
    try:
        if await claims.owner_disabled(turn.owner_id):
            raise ModelUnavailable(ChatErrorKind.AUTH, OWNER_DISABLED_MESSAGE)
        model = await resolve_model(turn.model_config_id, turn.owner_id, turn.secrets)
        await _steps(turn, model)
    except ModelUnavailable as exc:
        error = error_payload(exc, None)
    except spend.SpendRefused as exc:
        error = spend_error(exc, None)
    except ProviderError as exc:
        error = error_payload(exc, exc.provider)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("turn failed", extra={"chat_id": str(turn.chat_id)})
        error = {
            "kind": ChatErrorKind.GENERIC.value,
            "message": "The turn failed unexpectedly.",
            "detail": None,
            "provider": None,
            "retryable": False,
            "statusCode": None,
        }
    await finish(turn, error)
    turn.finished = True
    return error is None
