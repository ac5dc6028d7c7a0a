"""OpenAI chat completions (and OpenAI-compatible servers) behind ``LlmClient``.

Chat completions, not the Responses API, because every OpenAI-compatible server
(vLLM, llama.cpp, OpenRouter, LiteLLM…) speaks it; one code path serves both
provider kinds. The SDK's own retries are off: the daemon retries with its
backoff and publishes each attempt.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)

from daemon.providers.base import (
    CONNECT_TIMEOUT_S,
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    OPENAI,
    READ_TIMEOUT_S,
    Finish,
    ModelRequest,
    ReasoningDelta,
    StreamEvent,
    StreamingClient,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from daemon.providers.errors import ProviderError
from daemon.providers.transcript import joined_text, parse_tool_args, result_text, value_text
from db.costing import usage_from_openai as normalise_openai
from db.parts import ToolCallPart, ToolResultPart
from db.vocabulary import ChatErrorKind

# Compatible servers put streamed reasoning in one of these non-standard delta fields.
_REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass(slots=True)
class _PendingCall:
    tool_call_id: str = ""
    tool_name: str = ""
    args: str = ""


class OpenAIClient(StreamingClient):
    """Streams chat completions; ``provider`` is ``openai`` or ``openai_compatible``."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        provider: str = OPENAI,
        timeout: float | None = READ_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if not api_key and provider == OPENAI:
            raise ProviderError(ChatErrorKind.MISSING_KEY, provider=provider)
        # Local compatible servers often need no key; an empty one sends no header.
        sdk = openai.AsyncOpenAI(
            api_key=api_key or "",
            base_url=base_url,
            max_retries=0,
            # A bare number would be the connect timeout too.
            timeout=openai.Timeout(timeout, connect=connect_timeout),
            _enforce_credentials=False,
        )
        super().__init__(provider=provider, api_key=api_key, sdk=sdk)
        self._client = sdk

    @staticmethod
    def normalise_usage(raw: Mapping[str, Any], before: Usage | None = None) -> Usage:
        """Chat completions report usage once, in the last chunk."""
        return normalise_openai(raw)

    async def _events(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        limit = request.max_output_tokens
        # Compatible servers know ``max_tokens``; OpenAI's reasoning models only the new name.
        new_limit = limit if limit is not None and self.provider == OPENAI else openai.omit
        old_limit = limit if limit is not None and self.provider != OPENAI else openai.omit
        chunks = await self._client.chat.completions.create(
            model=request.model,
            messages=to_openai_messages(request),
            stream=True,
            stream_options={"include_usage": True},
            tools=[_tool(spec.name, spec.description, spec.parameters) for spec in request.tools]
            or openai.omit,
            temperature=openai.omit if request.temperature is None else request.temperature,
            max_completion_tokens=new_limit,
            max_tokens=old_limit,
            # Keyless: the SDK insists on an Authorization header unless told to omit it.
            extra_headers=None if self._api_key else {"Authorization": openai.omit},
        )
        calls: dict[int, _PendingCall] = {}
        reason: str | None = None
        usage: Usage | None = None
        async with chunks:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = self.normalise_usage(chunk.usage.model_dump())
                for event in _chunk_deltas(chunk, calls):
                    yield event
                chunk_reason = chunk.choices[0].finish_reason if chunk.choices else None
                if chunk_reason is not None and reason is None:
                    reason = chunk_reason
                    for event in self._completed_calls(calls):
                        yield event
        if reason is None:
            raise self.incomplete()
        if usage is not None:
            yield usage
        if reason == "content_filter":
            raise ProviderError(ChatErrorKind.CONTENT_FILTER, provider=self.provider)
        # Some compatible servers end tool-call replies with "stop".
        if reason == "function_call" or (calls and reason == FINISH_STOP):
            reason = FINISH_TOOL_CALLS
        yield Finish(reason)

    def _completed_calls(self, calls: dict[int, _PendingCall]) -> list[ToolCall]:
        return [
            ToolCall(
                call.tool_call_id or f"call_{index}",
                call.tool_name,
                parse_tool_args(call.args, provider=self.provider, tool_name=call.tool_name),
            )
            for index, call in sorted(calls.items())
        ]


def _chunk_deltas(chunk: ChatCompletionChunk, calls: dict[int, _PendingCall]) -> list[StreamEvent]:
    """The deltas of one chunk; tool-call fragments are also accumulated in ``calls``."""
    if not chunk.choices:
        return []
    delta = chunk.choices[0].delta
    events: list[StreamEvent] = []
    extra = delta.model_extra or {}
    for name in _REASONING_FIELDS:
        reasoning = extra.get(name)
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning))
            break
    if delta.content:
        events.append(TextDelta(delta.content))
    for fragment in delta.tool_calls or ():
        call = calls.setdefault(fragment.index, _PendingCall())
        if fragment.id:
            call.tool_call_id = fragment.id
        function = fragment.function
        if function is None:
            continue
        if function.name:
            call.tool_name = function.name
        if function.arguments:
            call.args += function.arguments
            events.append(ToolCallDelta(call.tool_call_id, call.tool_name, function.arguments))
    return events


def to_openai_messages(request: ModelRequest) -> list[ChatCompletionMessageParam]:
    """The request as chat messages: system first, one ``tool`` message per result."""
    out: list[ChatCompletionMessageParam] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ToolResultPart):
                content = result_text(part)
                out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": content})
        text = joined_text(message.parts)
        images = message.attachments() if message.role == "user" else []
        if message.role == "user" and images:
            blocks: list[ChatCompletionContentPartParam] = (
                [{"type": "text", "text": text}] if text else []
            )
            blocks.extend({"type": "image_url", "image_url": {"url": f.data_url()}} for f in images)
            out.append({"role": "user", "content": blocks})
        elif message.role == "user" and text:
            out.append({"role": "user", "content": text})
        elif message.role == "assistant":
            calls = [_tool_call(p) for p in message.parts if isinstance(p, ToolCallPart)]
            if not text and not calls:
                continue
            assistant: ChatCompletionAssistantMessageParam = {
                "role": "assistant",
                "content": text or None,
            }
            if calls:
                assistant["tool_calls"] = calls
            out.append(assistant)
    return out


def _tool_call(part: ToolCallPart) -> ChatCompletionMessageFunctionToolCallParam:
    return {
        "id": part.tool_call_id,
        "type": "function",
        "function": {"name": part.tool_name, "arguments": value_text(part.args or {})},
    }


def _tool(
    name: str, description: str, parameters: dict[str, Any]
) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }
