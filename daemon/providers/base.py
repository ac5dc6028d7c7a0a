"""The one interface between the daemon and every LLM provider.

A turn, a title and a summary all go through ``LlmClient.stream``: the daemon
builds a ``ModelRequest`` from stored message parts and consumes a provider-
neutral event stream, so retries, persistence, live deltas and debug recording
(``daemon.debug_recorder`` wraps ``stream``) never depend on which SDK produced
them. The two SDK clients share ``StreamingClient``: the streaming loop with its
error classification and key redaction, closing, the incomplete-stream error,
and the usage hook (each maps its wire usage through ``db.costing``).
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from daemon.providers.errors import ProviderError, classify
from db.costing import Usage as Usage  # re-exported: the clients report it
from db.parts import FilePart, Part
from db.vocabulary import ChatErrorKind

# Provider kinds, as ``make_client`` and the provider configs name them.
OPENAI = "openai"
OPENAI_COMPATIBLE = "openai_compatible"
ANTHROPIC = "anthropic"
SCRIPTED = "scripted"
PROVIDER_KINDS = (OPENAI, OPENAI_COMPATIBLE, ANTHROPIC, SCRIPTED)

# How long a provider may take: a reply may think and stream for minutes, but
# reaching the provider (resolving its name, connecting) takes seconds or it will
# not happen. A connect that hangs (no route, dropped packets) must fail soon so
# the turn retries it, announced, instead of sitting RUNNING in silence.
READ_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 10.0

# Normalized ``Finish.reason`` values; a provider's other reasons pass through as-is.
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"


@dataclass(slots=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InlineFile:
    """An attached file's bytes, read from storage when the request is built."""

    name: str
    mime_type: str
    data: bytes

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(slots=True)
class ModelMessage:
    """One turn sent to the model.

    Tool results travel as ``ToolResultPart`` in role ``tool``; the assistant's
    own tool calls as ``ToolCallPart`` in role ``assistant``. ``files`` holds the
    bytes of the message's ``FilePart``s by file id (stored rows keep only ids).
    """

    role: Literal["user", "assistant", "tool"]
    parts: list[Part]
    files: dict[str, InlineFile] = field(default_factory=dict)

    def attachments(self) -> list[InlineFile]:
        return [
            self.files[p.file_id]
            for p in self.parts
            if isinstance(p, FilePart) and p.file_id in self.files
        ]


@dataclass(slots=True)
class ModelRequest:
    model: str
    system: str | None
    messages: list[ModelMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    max_output_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call's JSON arguments, for live display only.

    The complete call always follows as a ``ToolCall``; never execute from deltas.
    """

    tool_call_id: str
    tool_name: str
    args_delta: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    tool_call_id: str
    tool_name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finish:
    """The last event of a successful stream: ``stop``, ``length``, ``tool_calls``…"""

    reason: str


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | ToolCall | Usage | Finish


class LlmClient(Protocol):
    """A provider connection; ``stream`` raises ``ProviderError`` on failure.

    A successful stream ends with ``Usage`` (when the provider reports it) and
    then ``Finish``. Deltas already yielded stay valid when a stream fails later.
    """

    provider: str

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]: ...


class _Closable(Protocol):
    async def close(self) -> None: ...


class StreamingClient(ABC):
    """The SDK clients' common part; a subclass turns one request into events
    (``_events``) and maps its wire usage (``normalise_usage``)."""

    provider: str

    def __init__(self, *, provider: str, api_key: str | None, sdk: _Closable) -> None:
        self.provider = provider
        self._api_key = api_key
        self._sdk = sdk

    async def aclose(self) -> None:
        await self._sdk.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        try:
            async with aclosing(self._events(request)) as events:
                async for event in events:
                    yield event
        except Exception as exc:
            # ``from None``: the SDK exception carries the request and its headers.
            raise classify(exc, self.provider).redact(self._api_key) from None

    @abstractmethod
    def _events(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        """The provider's stream as events; ends with ``Usage`` then ``Finish``."""

    @staticmethod
    @abstractmethod
    def normalise_usage(raw: Mapping[str, Any], before: Usage | None = None) -> Usage:
        """The wire's usage object (``before``: what the stream reported so far)."""

    def incomplete(self) -> ProviderError:
        """The stream ended without its final event: a dropped connection, retried."""
        return ProviderError(
            ChatErrorKind.GENERIC,
            provider=self.provider,
            message="The model provider ended the stream before the reply was complete.",
            retryable=True,
        )


async def complete_text(client: LlmClient, request: ModelRequest) -> tuple[str, Usage | None]:
    """The whole text reply and its usage, for titles and summaries."""
    chunks: list[str] = []
    usage: Usage | None = None
    async for event in client.stream(request):
        if isinstance(event, TextDelta):
            chunks.append(event.text)
        elif isinstance(event, Usage):
            usage = event
    return "".join(chunks), usage
