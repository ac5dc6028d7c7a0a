"""Anthropic's Messages API behind ``LlmClient``.

Streams raw events (not the SDK's accumulating helper) so every delta reaches
the daemon as it arrives; tool input JSON is assembled here. The SDK's own
retries are off: the daemon retries with its backoff and publishes each attempt.
``ModelRequest.temperature`` is not sent: the Messages API of anthropic 2.x has
no sampling parameters.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anthropic
from anthropic.types import (
    ImageBlockParam,
    MessageDeltaUsage,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from anthropic.types import Usage as AnthropicUsage

from daemon.providers.base import (
    ANTHROPIC,
    CONNECT_TIMEOUT_S,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    READ_TIMEOUT_S,
    Finish,
    InlineFile,
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
from daemon.providers.transcript import joined_text, parse_tool_args, result_text
from db.costing import usage_from_anthropic
from db.parts import ToolCallPart, ToolResultPart
from db.vocabulary import ChatErrorKind

# The API requires ``max_tokens``; this applies when the model config sets none.
DEFAULT_MAX_TOKENS = 8192

_FINISH = {
    "end_turn": FINISH_STOP,
    "stop_sequence": FINISH_STOP,
    "max_tokens": FINISH_LENGTH,
    "model_context_window_exceeded": FINISH_LENGTH,
    "tool_use": FINISH_TOOL_CALLS,
}

_Block = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam | ImageBlockParam
# Part B §2.5: larger images are not inlined for Anthropic.
ANTHROPIC_INLINE_IMAGE_MAX = 5 * 1024 * 1024


class _Sdk(anthropic.AsyncAnthropic):
    """Sends the API key as ``X-Api-Key``, the header the Messages API documents.

    anthropic 2.10.0 sends ``api_key`` as ``Authorization: Bearer``, the header
    for OAuth tokens, not API keys.
    """

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key} if self.api_key else {}


@dataclass(slots=True)
class _ToolBlock:
    tool_call_id: str
    tool_name: str
    initial: dict[str, object]  # some compatible servers send the input whole, up front
    args: str = ""

    def complete(self, provider: str) -> ToolCall:
        if not self.args.strip() and self.initial:
            return ToolCall(self.tool_call_id, self.tool_name, dict(self.initial))
        args = parse_tool_args(self.args, provider=provider, tool_name=self.tool_name)
        return ToolCall(self.tool_call_id, self.tool_name, args)


class AnthropicClient(StreamingClient):
    """Streams Messages API replies; prompt caching marks the last block by default."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float | None = READ_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        prompt_cache: bool = True,
    ) -> None:
        if not api_key:
            raise ProviderError(ChatErrorKind.MISSING_KEY, provider=ANTHROPIC)
        self._prompt_cache = prompt_cache
        # A bare number would be the connect timeout too.
        sdk = _Sdk(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=anthropic.Timeout(timeout, connect=connect_timeout),
        )
        super().__init__(provider=ANTHROPIC, api_key=api_key, sdk=sdk)
        self._client = sdk

    @staticmethod
    def normalise_usage(raw: Mapping[str, Any], before: Usage | None = None) -> Usage:
        """``message_start`` then cumulative ``message_delta`` counts: later ones win."""
        return usage_from_anthropic(raw, before)

    def _count(self, usage: AnthropicUsage | MessageDeltaUsage, before: Usage | None) -> Usage:
        return self.normalise_usage(usage.model_dump(), before)

    async def _events(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        tools: list[ToolParam] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        raw_events = await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_output_tokens or DEFAULT_MAX_TOKENS,
            messages=to_anthropic_messages(request),
            system=request.system or anthropic.omit,
            tools=tools or anthropic.omit,
            cache_control={"type": "ephemeral"} if self._prompt_cache else anthropic.omit,
            stream=True,
        )
        blocks: dict[int, _ToolBlock] = {}
        counts: Usage | None = None
        stop_reason: str | None = None
        finished = False
        async with raw_events:
            async for event in raw_events:
                if isinstance(event, RawMessageStartEvent):
                    counts = self._count(event.message.usage, counts)
                elif isinstance(event, RawContentBlockStartEvent):
                    block = event.content_block
                    if block.type == "tool_use":
                        blocks[event.index] = _ToolBlock(block.id, block.name, block.input)
                    elif block.type == "text" and block.text:
                        yield TextDelta(block.text)
                elif isinstance(event, RawContentBlockDeltaEvent):
                    delta = _delta_event(event, blocks)
                    if delta is not None:
                        yield delta
                elif isinstance(event, RawContentBlockStopEvent):
                    if (tool := blocks.get(event.index)) is not None:
                        yield tool.complete(self.provider)
                elif isinstance(event, RawMessageDeltaEvent):
                    counts = self._count(event.usage, counts)
                    stop_reason = event.delta.stop_reason or stop_reason
                elif isinstance(event, RawMessageStopEvent):
                    finished = True
                    break
        if not finished:
            raise self.incomplete()
        yield counts or Usage()
        if stop_reason == "refusal":
            raise ProviderError(ChatErrorKind.CONTENT_FILTER, provider=self.provider)
        yield Finish(_FINISH.get(stop_reason or "end_turn", stop_reason or FINISH_STOP))


def _delta_event(
    event: RawContentBlockDeltaEvent, blocks: dict[int, _ToolBlock]
) -> StreamEvent | None:
    delta = event.delta
    if delta.type == "text_delta":
        return TextDelta(delta.text) if delta.text else None
    if delta.type == "thinking_delta":
        return ReasoningDelta(delta.thinking) if delta.thinking else None
    if delta.type == "input_json_delta" and (tool := blocks.get(event.index)) is not None:
        tool.args += delta.partial_json
        if delta.partial_json:
            return ToolCallDelta(tool.tool_call_id, tool.tool_name, delta.partial_json)
    return None


def to_anthropic_messages(request: ModelRequest) -> list[MessageParam]:
    """The request as alternating turns; tool results go back in a ``user`` turn."""
    turns: list[tuple[Literal["user", "assistant"], list[_Block]]] = []
    for message in request.messages:
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        blocks: list[_Block] = [
            {
                "type": "tool_result",
                "tool_use_id": p.tool_call_id,
                "content": result_text(p),
                "is_error": p.is_error,
            }
            for p in message.parts
            if isinstance(p, ToolResultPart)
        ]
        if text := joined_text(message.parts):
            blocks.append({"type": "text", "text": text})
        if message.role == "user":
            blocks.extend(_image(f) for f in message.attachments())
        blocks.extend(
            {"type": "tool_use", "id": p.tool_call_id, "name": p.tool_name, "input": _input(p)}
            for p in message.parts
            if isinstance(p, ToolCallPart)
        )
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    out: list[MessageParam] = []
    for role, blocks in turns:
        if role == "user":
            out.append({"role": "user", "content": blocks})
        else:
            out.append({"role": "assistant", "content": blocks})
    return out


def _image(attached: InlineFile) -> _Block:
    """Images go inline up to Anthropic's 5 MiB cap; larger ones are named only."""
    if len(attached.data) > ANTHROPIC_INLINE_IMAGE_MAX:
        return {"type": "text", "text": f"[image {attached.name} too large to show inline]"}
    data = base64.b64encode(attached.data).decode("ascii")
    media: Any = attached.mime_type
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _input(part: ToolCallPart) -> dict[str, object]:
    args = part.args
    if isinstance(args, dict):
        return args
    return {} if args is None else {"value": args}
