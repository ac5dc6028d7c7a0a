"""One place that turns a provider kind and its credentials into a client.

SDK modules are imported on first use so a daemon that only runs the scripted
client (tests, demos) never pays for importing them.
"""

from __future__ import annotations

from daemon.providers.base import (
    ANTHROPIC,
    CONNECT_TIMEOUT_S,
    OPENAI,
    OPENAI_COMPATIBLE,
    PROVIDER_KINDS,
    SCRIPTED,
    LlmClient,
)
from daemon.providers.errors import ProviderError
from db.vocabulary import ChatErrorKind

__all__ = ["ANTHROPIC", "OPENAI", "OPENAI_COMPATIBLE", "PROVIDER_KINDS", "SCRIPTED", "make_client"]


def make_client(
    kind: str,
    *,
    api_key: str | None,
    base_url: str | None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> LlmClient:
    """A client for ``kind``; raises ``ProviderError`` (CONFIG, MISSING_KEY) when it cannot.

    ``openai-compatible`` is accepted as a spelling of ``openai_compatible``.
    """
    normalized = kind.strip().lower().replace("-", "_")
    if normalized in (OPENAI, OPENAI_COMPATIBLE):
        from daemon.providers.openai_client import OpenAIClient

        return OpenAIClient(
            api_key=api_key,
            base_url=base_url or None,
            provider=normalized,
            connect_timeout=connect_timeout,
        )
    if normalized == ANTHROPIC:
        from daemon.providers.anthropic_client import AnthropicClient

        return AnthropicClient(
            api_key=api_key, base_url=base_url or None, connect_timeout=connect_timeout
        )
    if normalized == SCRIPTED:
        from daemon.providers.scripted import ScriptedClient

        return ScriptedClient()
    raise ProviderError(
        ChatErrorKind.CONFIG,
        provider=kind,
        message=f"Unknown provider kind {kind!r}.",
        retryable=False,
    )
