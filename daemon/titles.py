"""Chat titles written by a model: automatic after the first exchange, and
regenerated on request with richer context.

Each title call is held and settled like any model call (``daemon.spending``): a
user out of budget keeps their current title.

A cheap model is preferred when one is configured (Part B's preference list),
else the chat's own model. An unusable answer keeps the current title. A
regeneration's token usage is stored as a soft-deleted, model-only assistant
message, so cost accounting counts it while the history never shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from daemon import spending
from daemon.debug_recorder import GENERATE, DebugRecorder
from daemon.providers import ModelMessage, ModelRequest, Usage, complete_text, make_client
from db import spend
from db.model_resolution import ModelUnavailable, ResolvedModel, resolve_model
from db.models import Chat, ChatMessage, DebugRunKind, ModelConfig
from db.parts import Part, TextPart, parts_from_json
from db.secret_box import SecretBox
from db.titles import fallback_title, normalize_title
from db.vocabulary import ChatListEventKind, MessageRole, Visibility
from events.announcer import ChatAnnouncer

log = logging.getLogger(__name__)

CHEAP_MODELS = ("claude-haiku-4-5", "gpt-4o-mini", "gemini-2.5-flash", "anthropic/claude-3.5-haiku")
TIMEOUT_S = 30.0
CONVERSATION_MAX = 6000
LATEST_MAX = 1000
INSTRUCTION = (
    "Write a title for this conversation: 2 to 8 words, sentence case, no quotes, "
    "no emoji, no markdown, no trailing punctuation. Answer with the title only."
)


@dataclass
class TitleResult:
    title: str | None
    usage: Usage | None
    model: ResolvedModel


async def _models(chat: Chat, secrets: SecretBox) -> list[ResolvedModel]:
    """A cheap model first when one is usable, then the chat's own."""
    owner = chat.owner_id  # type: ignore[attr-defined]
    found: list[ResolvedModel] = []
    cheap = await ModelConfig.filter(model__in=CHEAP_MODELS, enabled=True, deleted=False).first()
    if cheap is not None:
        with contextlib.suppress(ModelUnavailable):
            found.append(await resolve_model(cheap.id, owner, secrets))
    own = await resolve_model(chat.model_config_id, owner, secrets)
    if not found or found[0].model_config_id != own.model_config_id:
        found.append(own)
    return found


def _payer(chat: Chat) -> spending.Payer:
    return spending.Payer(chat.owner_id, chat.id, chat.root_id)  # type: ignore[attr-defined]


async def _ask(
    chat: Chat, secrets: SecretBox, prompt_text: str, events: ChatAnnouncer | None = None
) -> TitleResult:
    """The first model that answers; a failing cheap model falls back to the chat's.
    A refused hold (``spend.SpendRefused``) ends the attempt: no model is free."""
    models = await _models(chat, secrets)
    for model in models[:-1]:
        try:
            return await _ask_model(chat, model, prompt_text, events)
        except spend.SpendRefused:
            raise
        except Exception:
            log.info("title model %s failed; trying the next", model.model, exc_info=True)
    return await _ask_model(chat, models[-1], prompt_text, events)


async def _ask_model(
    chat: Chat, model: ResolvedModel, prompt_text: str, events: ChatAnnouncer | None = None
) -> TitleResult:
    request = ModelRequest(
        model=model.model,
        system=INSTRUCTION,
        messages=[ModelMessage(role="user", parts=[TextPart(prompt_text)])],
        max_output_tokens=256,
    )
    payer = _payer(chat)
    held, request = await spending.reserve(payer, model, request, None)
    client = make_client(model.provider_kind.value, api_key=model.api_key, base_url=model.base_url)
    # Debug logging, when it applies: one run per title call (its model may differ).
    recorder = await DebugRecorder.start(
        chat.id, DebugRunKind.TITLE_GENERATION, model, events, None
    )
    recording = recorder.step(request, GENERATE)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            text, usage = await complete_text(recording.wrap(client), request)
    except BaseException as exc:
        await recording.end(exc)
        await recorder.finish(exc)
        await asyncio.shield(spend.release(held))
        raise
    finally:
        close = getattr(client, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
    await recording.end()
    await recorder.finish()
    title = normalize_title(text)
    await _record(chat, model, held, spending.billed_usage(usage, held, request, model), title)
    return TitleResult(title, usage, model)


async def _record(
    chat: Chat, model: ResolvedModel, held: spend.Hold, usage: Usage | None, title: str | None
) -> None:
    """The call's spend, as a soft-deleted model-only assistant message (cost
    accounting counts it; the history never shows it), settled with it."""
    if usage is None:
        await spend.release(held)
        return
    charge = spending.charge(_payer(chat), model, usage)
    async with in_transaction() as conn:
        await ChatMessage.create(
            chat_id=chat.id,
            role=MessageRole.ASSISTANT,
            parts=[{"type": "text", "text": title or ""}],
            visibility=Visibility.MODEL,
            deleted=True,
            model_config_id=model.model_config_id,
            using_db=conn,
            **charge.columns(),
        )
        await spending.settle(conn, held, charge)


def _text(parts: list[Part]) -> str:
    return " ".join(p.text for p in parts if isinstance(p, TextPart)).strip()


async def _visible_turns(chat_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = (
        await ChatMessage.filter(
            chat_id=chat_id,
            deleted=False,
            role__in=[MessageRole.USER, MessageRole.ASSISTANT],
        )
        .exclude(visibility=Visibility.MODEL)
        .order_by("id")
    )
    turns = [(row.role.value, _text(parts_from_json(row.parts))) for row in rows]
    return [(role, text) for role, text in turns if text]


async def set_title(chat: Chat, title: str, events: ChatAnnouncer | None) -> None:
    """Titles do not move the chat in the list: ``updated_at`` stays."""
    await Chat.filter(id=chat.id).update(title=title)
    if events is not None:
        try:
            await events.list_change(chat.owner_id, chat.id, ChatListEventKind.TITLE_CHANGED)  # type: ignore[attr-defined]
        except Exception:
            log.warning("publishing a title change failed", exc_info=True)


async def auto_title(chat_id: uuid.UUID, secrets: SecretBox, events: ChatAnnouncer | None) -> None:
    """After the first exchange, while the title is still the fallback."""
    chat = await Chat.filter(id=chat_id).first()
    if chat is None:
        return
    turns = await _visible_turns(chat_id)
    users = [text for role, text in turns if role == MessageRole.USER.value]
    if len(users) != 1 or not any(role == MessageRole.ASSISTANT.value for role, _ in turns):
        return
    if chat.title != fallback_title([TextPart(users[0])]):
        return  # renamed by someone meanwhile
    try:
        result = await _ask(chat, secrets, users[0][:CONVERSATION_MAX], events)
    except Exception:
        log.info("automatic title failed; the fallback stays", exc_info=True)
        return
    if result.title:
        await set_title(chat, result.title, events)


def regeneration_prompt(turns: list[tuple[str, str]]) -> str:
    """First user turn + the last three turns, the middle replaced by a marker."""
    if not turns:
        return ""
    first_user = next((text for role, text in turns if role == "user"), turns[0][1])
    tail = turns[max(1, len(turns) - 3) :]
    omitted = len(turns) - 1 - len(tail)
    lines = [f"[{turns[0][0]}]: {turns[0][1]}"]
    if omitted:
        lines.append(f"[... {omitted} earlier turns omitted ...]")
    lines += [f"[{role}]: {text}" for role, text in tail]
    conversation = "\n".join(lines)[:CONVERSATION_MAX]
    latest_user = next((text for role, text in reversed(turns) if role == "user"), "")
    return (
        f"<primary_objective>\n{first_user[:LATEST_MAX]}\n</primary_objective>\n"
        f"<conversation_sample>\n{conversation}\n</conversation_sample>\n"
        f"<latest_message>\n{latest_user[:LATEST_MAX]}\n</latest_message>"
    )


async def regenerate_title(
    chat_id: uuid.UUID, secrets: SecretBox, events: ChatAnnouncer | None
) -> str | None:
    chat = await Chat.filter(id=chat_id).first()
    if chat is None:
        return None
    turns = await _visible_turns(chat_id)
    result = await _ask(chat, secrets, regeneration_prompt(turns), events)
    if result.title:
        await set_title(chat, result.title, events)
    return result.title
