"""LLM clients behind one small interface (see ``base``).

Only the interface, the errors and the factory are imported here; the SDK
modules load when a client of their kind is first made.
"""

from daemon.providers.base import (
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    Finish,
    InlineFile,
    LlmClient,
    ModelMessage,
    ModelRequest,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    complete_text,
)
from daemon.providers.errors import ProviderError, classify
from daemon.providers.factory import PROVIDER_KINDS, make_client

__all__ = [
    "FINISH_LENGTH",
    "FINISH_STOP",
    "FINISH_TOOL_CALLS",
    "PROVIDER_KINDS",
    "Finish",
    "InlineFile",
    "LlmClient",
    "ModelMessage",
    "ModelRequest",
    "ProviderError",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "classify",
    "complete_text",
    "make_client",
]
