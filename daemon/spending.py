"""A daemon model call's money: hold before the call, settle with the row that
records it, release when it fails (``db.spend`` is the one path; this adds what
only the daemon knows: how big a request can be and whom it is charged to).

Every model call the daemon makes — a turn's steps, titles, compaction; explore
children and sub-agents are turns of their own chats — goes through ``reserve``.
Spend is charged to the chat's owner and rolled up to the chat's root.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from daemon.providers import ModelRequest
from daemon.providers.anthropic_client import DEFAULT_MAX_TOKENS as ANTHROPIC_DEFAULT_MAX_TOKENS
from db import ai_request_logs, spend
from db.costing import Usage
from db.model_resolution import ResolvedModel
from db.parts import FilePart, Part
from db.parts import to_json as part_to_json
from db.vocabulary import ProviderKind

# Bytes bound tokens from above: every token of a byte-level BPE vocabulary is at
# least one byte. Framing tokens per message, and images (never more than a few
# thousand tokens at any provider's largest size), are added on top.
MESSAGE_OVERHEAD_TOKENS = 16
IMAGE_TOKENS_MAX = 6_400
# Providers add a tool-use system prompt of their own when tools are sent
# (Anthropic documents up to 346 tokens): not in the request's bytes, so added.
TOOLS_OVERHEAD_TOKENS = 512


def _part_bytes(part: Part) -> int:
    if isinstance(part, FilePart):
        return 0  # counted as an image below
    return len(orjson.dumps(part_to_json(part)))


def input_token_bound(request: ModelRequest) -> int:
    """An upper bound of the request's prompt tokens (what the hold reserves)."""
    total = len((request.system or "").encode()) + MESSAGE_OVERHEAD_TOKENS
    for message in request.messages:
        total += MESSAGE_OVERHEAD_TOKENS + sum(_part_bytes(p) for p in message.parts)
        total += IMAGE_TOKENS_MAX * sum(isinstance(p, FilePart) for p in message.parts)
    if request.tools:
        total += TOOLS_OVERHEAD_TOKENS
    for tool in request.tools:
        total += MESSAGE_OVERHEAD_TOKENS + len(tool.name) + len(tool.description.encode())
        total += len(orjson.dumps(tool.parameters))
    return total


@dataclass(frozen=True, slots=True)
class Payer:
    """Who a call is charged to and which chat it rolls up under."""

    owner_id: uuid.UUID
    chat_id: uuid.UUID | None
    root_id: uuid.UUID | None


async def reserve(
    payer: Payer, model: ResolvedModel, request: ModelRequest, worker_id: uuid.UUID | None
) -> tuple[spend.Hold, ModelRequest]:
    """Hold the call's worst case; the request comes back with its output cap
    lowered when the budget is tight. Raises ``spend.SpendRefused``."""
    if request.max_output_tokens is None and model.provider_kind is ProviderKind.ANTHROPIC:
        # What the client would send anyway: a hold must not raise it to a
        # maximum the model refuses.
        request = replace(request, max_output_tokens=ANTHROPIC_DEFAULT_MAX_TOKENS)
    bound = min(input_token_bound(request), max(model.context_limit, 1))
    taking = asyncio.ensure_future(
        spend.hold(
            payer.owner_id,
            model.prices,
            model=model.display_name,
            input_tokens=bound,
            max_output_tokens=request.max_output_tokens,
            worker_id=worker_id,
        )
    )
    try:
        held = await asyncio.shield(taking)
    except asyncio.CancelledError:
        # Cancelled mid round trip: the hold may be taken all the same, and
        # nobody would settle it while the worker renews it. Give it back.
        taking.add_done_callback(_give_back)
        raise
    if held.max_output_tokens is not None and held.max_output_tokens != request.max_output_tokens:
        request = replace(request, max_output_tokens=held.max_output_tokens)
    return held, request


# Releases of holds whose callers were cancelled, kept until done.
_giving_back: set[asyncio.Task[None]] = set()


def _give_back(taking: asyncio.Future[spend.Hold]) -> None:
    if taking.cancelled() or taking.exception() is not None:
        return
    task = asyncio.ensure_future(spend.release(taking.result()))
    _giving_back.add(task)
    task.add_done_callback(_giving_back.discard)


def billed_usage(
    usage: Usage | None, held: spend.Hold, request: ModelRequest, model: ResolvedModel
) -> Usage | None:
    """What a finished call is charged for: the usage it reported; when it reported
    none but a limit applied, the worst case its hold covered (a server that omits
    usage must not make calls free for a limited user); otherwise nothing."""
    if usage is not None or held.id is None:
        return usage
    bound = min(input_token_bound(request), max(model.context_limit, 1))
    return Usage(input_tokens=bound, output_tokens=held.max_output_tokens or 0)


def cut_usage(
    held: spend.Hold, request: ModelRequest, model: ResolvedModel, streamed: list[dict[str, Any]]
) -> Usage | None:
    """What a call that ended early (interrupted, cut, failed mid-stream) is charged.
    Nothing when it streamed nothing or no limit applies (its hold is released).
    Under a limit, output that arrived was billed by the provider: the call is
    charged its input bound and the streamed parts' bytes as output tokens (bytes
    bound tokens), at most the output its hold covered — never free, so stopping
    each turn just before its end cannot spend past the limit."""
    if held.id is None or not streamed:
        return None
    bound = min(input_token_bound(request), max(model.context_limit, 1))
    output = sum(len(orjson.dumps(part)) for part in streamed)
    if held.max_output_tokens is not None:
        output = min(output, held.max_output_tokens)
    return Usage(input_tokens=bound, output_tokens=output)


# How the daemon's own model calls are named in the request logs.
DAEMON_CLIENT = "AGENTGQL"


async def settle(
    conn: Any, held: spend.Hold, charge: spend.Charge, *, duration_ms: int = 0
) -> None:
    """Settle a call's spend and log it, in the caller's transaction (the one that
    writes its message): the ledger, the message and the log never disagree."""
    await spend.settle(conn, held, charge)
    at = charge.at or datetime.now(UTC)
    entry = ai_request_logs.RequestLogEntry(
        user_id=charge.user_id,
        client=DAEMON_CLIENT,
        user_agent=None,
        session_id=None,
        provider=charge.provider,
        model=charge.model,
        model_config_id=charge.model_config_id,
        endpoint="stream",
        stream=True,
        status=200,
        started_at=at - timedelta(milliseconds=max(duration_ms, 0)),
        duration_ms=duration_ms,
        usage=charge.usage,
        cost_micros=charge.cost_micros,
        chat_id=charge.chat_id,
    )
    await ai_request_logs.add(conn, entry)


def charge(payer: Payer, model: ResolvedModel, usage: Usage) -> spend.Charge:
    return spend.Charge(
        user_id=payer.owner_id,
        usage=usage,
        prices=model.prices,
        model_config_id=model.model_config_id,
        provider=model.provider_kind.value,
        model=model.model,
        chat_id=payer.chat_id,
        root_chat_id=payer.root_id,
    )
