"""Draining a client's stream in tests, up to its end or its error."""

from __future__ import annotations

import pytest

from daemon.providers import LlmClient, ModelRequest, ProviderError, StreamEvent


async def collect(client: LlmClient, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in client.stream(request)]


async def failure(
    client: LlmClient, request: ModelRequest
) -> tuple[list[StreamEvent], ProviderError]:
    """The events yielded before the stream failed, and its ``ProviderError``."""
    events: list[StreamEvent] = []

    async def drain() -> None:
        async for event in client.stream(request):
            events.append(event)

    with pytest.raises(ProviderError) as info:
        await drain()
    return events, info.value
