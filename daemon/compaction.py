"""Context compaction: when a turn filled enough of the model's context window,
summarise the conversation so later prompts start from the summary.

The threshold is the user's per-model override, else the model's (default 70 %);
100 turns it off. Usage is the last step's prompt size (input + cache read +
cache write) over the context limit. The summary is stored as a hidden user
message flagged ``compressed`` — prompt building starts there — plus a visible
"chat summarized" call and result, so people still see the whole history.
Compaction runs when a turn ends, never between a tool call and its result.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from daemon import prompt, spending
from daemon.debug_recorder import GENERATE, DebugRecorder
from daemon.providers import LlmClient, ModelMessage, ModelRequest, Usage, complete_text
from db import spend
from db.model_resolution import ResolvedModel
from db.models import ChatMessage, DebugRunKind
from db.parts import TextPart
from db.vocabulary import MessageRole, Visibility
from events.announcer import ChatAnnouncer

log = logging.getLogger(__name__)

TIMEOUT_S = 90.0
SUMMARY_PREFIX = "The following is a summary of the earlier conversation, written to save space:"
INSTRUCTION = (
    "Summarise the conversation so far for your own future reference. Keep: the user's "
    "goal, decisions made, file paths touched, errors found, what is done, in progress "
    "and remaining, and the very next action. Be complete but brief."
)


@dataclass(frozen=True)
class Pressure:
    usage_percent: float
    threshold: int
    context_tokens: int
    context_limit: int

    @property
    def due(self) -> bool:
        return self.threshold < 100 and self.usage_percent >= self.threshold


def pressure(usage: Usage | None, model: ResolvedModel) -> Pressure | None:
    if usage is None or model.context_limit <= 0:
        return None
    tokens = usage.context_tokens
    percent = tokens * 100 / model.context_limit
    return Pressure(percent, model.compression_threshold, tokens, model.context_limit)


async def compact(
    chat_id: uuid.UUID,
    model: ResolvedModel,
    client: LlmClient,
    load: Pressure,
    events: ChatAnnouncer | None,
    payer: spending.Payer,
    worker_id: uuid.UUID | None = None,
) -> bool:
    """Summarise and store; False (and the history untouched) when it fails or
    the budget cannot cover it. Its cost is the chat owner's, like any step."""
    log.info(
        "compacting chat context",
        extra={
            "chat_id": str(chat_id),
            "usage_percent": round(load.usage_percent, 1),
            "threshold_percent": load.threshold,
        },
    )
    history = await prompt.history(chat_id)
    request = ModelRequest(
        model=model.model,
        system=INSTRUCTION,
        messages=[*history, ModelMessage(role="user", parts=[TextPart(INSTRUCTION)])],
        max_output_tokens=model.max_output_tokens,
    )
    try:
        held, request = await spending.reserve(payer, model, request, worker_id)
    except spend.SpendRefused as exc:
        log.info("compaction skipped: %s", exc, extra={"chat_id": str(chat_id)})
        return False
    recorder = await DebugRecorder.start(chat_id, DebugRunKind.COMPACTION, model, events, worker_id)
    recording = recorder.step(request, GENERATE)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            summary, usage = await complete_text(recording.wrap(client), request)
    except BaseException as exc:
        await recording.end(exc)
        await recorder.finish(exc)
        await asyncio.shield(spend.release(held))
        if not isinstance(exc, Exception):
            raise
        log.warning("compaction failed; the full history stays in the prompt", exc_info=True)
        return False
    billed = spending.billed_usage(usage, held, request, model)
    charge = spending.charge(payer, model, billed) if billed is not None else None
    # The call was billed: from here its spend is written even when the turn is
    # cancelled meanwhile (a rolled-back settle would leave the hold reserved,
    # renewed by the worker's heartbeat for as long as it runs).
    try:
        await recording.end()
        await recorder.finish()
    except BaseException:
        await asyncio.shield(_settle_alone(held, charge))
        raise
    if not summary.strip():
        await asyncio.shield(_settle_alone(held, charge))
        return False
    call, result = await asyncio.shield(_store(chat_id, model, load, summary.strip(), held, charge))
    if events is not None:
        for message in (call, result):
            try:
                await events.message(chat_id, message.id)
            except Exception:
                log.warning("publishing a compaction message failed", exc_info=True)
    return True


async def _settle_alone(held: spend.Hold, charge: spend.Charge | None) -> None:
    """A call that produced nothing to keep still cost what it cost."""
    if charge is None:
        await spend.release(held)
        return
    async with in_transaction() as conn:
        await spending.settle(conn, held, charge)


async def _store(
    chat_id: uuid.UUID,
    model: ResolvedModel,
    load: Pressure,
    summary: str,
    held: spend.Hold,
    charge: spend.Charge | None,
) -> tuple[ChatMessage, ChatMessage]:
    """The summary, the visible call and its result, and the call's spend: one
    transaction, so the summary is never there without its cost."""
    call_id = f"chat_summarized_{uuid.uuid4().hex}"
    at = datetime.now(UTC)
    async with in_transaction() as conn:
        await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.USER,
            parts=[{"type": "text", "text": f"{SUMMARY_PREFIX}\n\n{summary}"}],
            visibility=Visibility.MODEL,
            compressed=True,
            using_db=conn,
        )
        call = await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.ASSISTANT,
            parts=[
                {
                    "type": "tool-call",
                    "toolCallId": call_id,
                    "toolName": "chat_summarized",
                    "args": {},
                }
            ],
            visibility=Visibility.USER,
            compressed=True,
            model_config_id=model.model_config_id,
            created_at=at,
            using_db=conn,
            **(charge.columns() if charge is not None else {}),
        )
        result = await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.TOOL,
            parts=[
                {
                    "type": "tool-result",
                    "toolCallId": call_id,
                    "toolName": "chat_summarized",
                    "isError": False,
                    "result": {
                        "summary": summary,
                        "source": "automatic",
                        "threshold_percent": load.threshold,
                        "usage_percent": round(load.usage_percent, 1),
                        "context_tokens": load.context_tokens,
                        "context_limit_tokens": load.context_limit,
                    },
                }
            ],
            visibility=Visibility.USER,  # the call is not sent to models, so neither is this
            compressed=True,
            using_db=conn,
        )
        if charge is not None:
            await spending.settle(conn, held, replace(charge, at=at))
        else:
            await spend.release(held, conn)
    return call, result
