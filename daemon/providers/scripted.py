"""A deterministic, offline ``LlmClient`` for tests, demos and daemon development.

It answers the last user message by echoing it word by word (one ``TextDelta``
per word, whitespace included): ``You said: <text>``, or ``OK`` when only
directives remain. Lines of that message that start with a directive steer it:

    /tool NAME {json}   call tool NAME with the JSON object (default ``{}``); one
                        ``ToolCall`` per line, ids ``call_1``, ``call_2``…
                        counted over the whole conversation; finish ``tool_calls``
    /reply TEXT         reply TEXT instead of the echo (also streamed before tool calls)
    /think TEXT         stream TEXT as reasoning before the reply
    /slow MS            sleep MS milliseconds before each word (for interrupts)
    /fail KIND [N]      raise ``ProviderError(KIND)`` before any output, KIND being a
                        ``ChatErrorKind`` value (``overloaded``, ``rate_limit``, ``auth``…);
                        with N only the first N attempts of this same request fail
    /cut W [N]          stream W words of the reply, then fail like a dropped
                        connection (generic, retryable); N as for ``/fail``

When the conversation ends with tool results it replies ``Tool NAME returned:
SUMMARY.`` (or ``failed:``) for each result and ignores the directives except
``/slow``, so a ``/tool`` turn ends after one round trip. Usage is deterministic:
input = words of the prompt (system, text, tool calls and results), output = words
emitted plus one per tool call. Attempts for ``/fail N`` and ``/cut W N`` are
counted per request content in this process, so they survive a daemon that
builds a new client for each retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from daemon.providers.base import (
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    SCRIPTED,
    Finish,
    ModelMessage,
    ModelRequest,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from daemon.providers.errors import RETRYABLE_KINDS, ProviderError
from daemon.providers.transcript import joined_text, result_text, value_text
from db.parts import ToolCallPart, ToolResultPart, parts_to_json
from db.vocabulary import ChatErrorKind

SUMMARY_MAX = 200
_ATTEMPTS_KEPT = 1024
_STATUS = {
    ChatErrorKind.RATE_LIMIT: 429,
    ChatErrorKind.OVERLOADED: 529,
    ChatErrorKind.TIMEOUT: 408,
    ChatErrorKind.GENERIC: 500,
    ChatErrorKind.AUTH: 401,
    ChatErrorKind.CONFIG: 400,
    ChatErrorKind.CONTENT_FILTER: 400,
}
_RETRYABLE = RETRYABLE_KINDS | {ChatErrorKind.GENERIC}
_WORD = re.compile(r"\s*\S+\s*")
# Attempts per request fingerprint, for ``/fail KIND N`` and ``/cut W N``.
_attempts: OrderedDict[str, int] = OrderedDict()


@dataclass(slots=True)
class _Script:
    """What the directives of one user message ask for."""

    text: str = ""
    reply: str | None = None
    think: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    slow_ms: int = 0
    fail: tuple[ChatErrorKind, int | None] | None = None
    cut: tuple[int, int | None] | None = None


class ScriptedClient:
    """Answers from the script in the last user message; never touches the network."""

    provider = SCRIPTED

    async def aclose(self) -> None:
        return None

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        script = _parse(_last_user_text(request.messages))
        if request.messages and request.messages[-1].role == "tool":
            # Only pacing survives a tool round trip, so a /tool turn ends after one.
            summary = _tool_summary(request.messages[-1])
            script = _Script(reply=summary, slow_ms=script.slow_ms)
        attempt = _next_attempt(request) if script.fail or script.cut else 0
        if script.fail is not None and _fails_now(script.fail[1], attempt):
            raise _scripted_failure(script.fail[0], attempt)
        cut_after = script.cut[0] if script.cut and _fails_now(script.cut[1], attempt) else None
        if script.reply is not None:
            reply = script.reply
        else:
            reply = "" if script.tools else _echo(script.text)
        emitted = 0
        for word in _words(script.think or ""):
            await _pause(script)
            emitted += 1
            yield ReasoningDelta(word)
        for index, word in enumerate(_words(reply)):
            if index == cut_after:
                break
            await _pause(script)
            emitted += 1
            yield TextDelta(word)
        if cut_after is not None:
            raise ProviderError(
                ChatErrorKind.GENERIC,
                provider=SCRIPTED,
                message="The connection to the model provider broke.",
                retryable=True,
            )
        first_id = 1 + sum(isinstance(p, ToolCallPart) for m in request.messages for p in m.parts)
        for offset, (name, args) in enumerate(script.tools):
            call_id = f"call_{first_id + offset}"
            yield ToolCallDelta(call_id, name, json.dumps(args))
            yield ToolCall(call_id, name, args)
        output = emitted + len(script.tools)
        yield Usage(input_tokens=_prompt_words(request), output_tokens=output)
        yield Finish(FINISH_TOOL_CALLS if script.tools else FINISH_STOP)


async def _pause(script: _Script) -> None:
    if script.slow_ms > 0:
        await asyncio.sleep(script.slow_ms / 1000)


def _fails_now(times: int | None, attempt: int) -> bool:
    return times is None or attempt <= times


def _scripted_failure(kind: ChatErrorKind, attempt: int) -> ProviderError:
    return ProviderError(
        kind,
        provider=SCRIPTED,
        message=f"Scripted {kind.value} failure (attempt {attempt}).",
        retryable=kind in _RETRYABLE,
        status_code=_STATUS.get(kind),
    )


def _parse(message: str) -> _Script:
    script = _Script()
    plain: list[str] = []
    for line in message.splitlines():
        command, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if command == "/tool" and rest:
            name, _, raw_args = rest.partition(" ")
            script.tools.append((name, _tool_args(name, raw_args)))
        elif command == "/reply":
            script.reply = rest
        elif command == "/think":
            script.think = rest
        elif command == "/slow" and rest.isdigit():
            script.slow_ms = int(rest)
        elif command == "/fail" and rest:
            kind, times = _name_and_times(rest)
            script.fail = (_kind(kind), times)
        elif command == "/cut" and rest:
            words, times = _name_and_times(rest)
            script.cut = (int(words) if words.isdigit() else 0, times)
        else:
            plain.append(line)
    script.text = "\n".join(plain).strip()
    return script


def _name_and_times(rest: str) -> tuple[str, int | None]:
    first, _, second = rest.partition(" ")
    second = second.strip()
    return first, int(second) if second.isdigit() else None


def _kind(value: str) -> ChatErrorKind:
    try:
        return ChatErrorKind(value.lower())
    except ValueError:
        raise ProviderError(
            ChatErrorKind.CONFIG,
            provider=SCRIPTED,
            message=f"Unknown error kind in /fail: {value!r}.",
            retryable=False,
        ) from None


def _tool_args(name: str, raw: str) -> dict[str, Any]:
    try:
        args = json.loads(raw) if raw.strip() else {}
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise ProviderError(
            ChatErrorKind.CONFIG,
            provider=SCRIPTED,
            message=f"/tool {name}: arguments must be a JSON object.",
            retryable=False,
        )
    return args


def _last_user_text(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return joined_text(message.parts)
    return ""


def _echo(text: str) -> str:
    return f"You said: {text}" if text else "OK"


def _tool_summary(message: ModelMessage) -> str:
    sentences = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            summary = value_text(part.result)
            if len(summary) > SUMMARY_MAX:
                summary = summary[: SUMMARY_MAX - 1] + "…"
            verb = "failed" if part.is_error else "returned"
            sentences.append(f"Tool {part.tool_name} {verb}: {summary}.")
    return " ".join(sentences) or "OK"


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _prompt_words(request: ModelRequest) -> int:
    texts = [request.system or ""]
    for message in request.messages:
        texts.append(joined_text(message.parts))
        texts.extend(result_text(p) for p in message.parts if isinstance(p, ToolResultPart))
        texts.extend(value_text(p.args) for p in message.parts if isinstance(p, ToolCallPart))
    return sum(len(text.split()) for text in texts)


def _next_attempt(request: ModelRequest) -> int:
    """1 for the first time this exact request is seen in this process, then 2, 3…"""
    content = [(m.role, parts_to_json(m.parts)) for m in request.messages]
    raw = json.dumps([request.model, request.system, content], default=str, sort_keys=True)
    key = hashlib.sha256(raw.encode()).hexdigest()
    attempt = _attempts.pop(key, 0) + 1
    _attempts[key] = attempt
    while len(_attempts) > _ATTEMPTS_KEPT:
        _attempts.popitem(last=False)
    return attempt
