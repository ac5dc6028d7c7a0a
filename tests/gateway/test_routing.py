"""Routing decisions are reused briefly and looked up once per burst; refusals never stick."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from gateway import routing
from gateway.wire import CHAT_COMPLETIONS


async def test_a_burst_of_calls_routes_once_and_refusals_are_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []
    release = asyncio.Event()

    async def fake_route(name: str, *args: Any) -> Any:
        lookups.append(name)
        await release.wait()
        if name == "missing":
            raise routing.RoutingError(404, "no", "model_not_found")
        return f"target:{name}"

    monkeypatch.setattr(routing, "route", fake_route)
    cache = routing.RouteCache()
    user = uuid.uuid4()
    burst = [
        asyncio.ensure_future(cache.route("m", CHAT_COMPLETIONS, user, None, 5.0))  # type: ignore[arg-type]
        for _ in range(8)
    ]
    await asyncio.sleep(0)
    release.set()
    results: list[Any] = await asyncio.gather(*burst)
    assert results == ["target:m"] * 8
    again: Any = await cache.route("m", CHAT_COMPLETIONS, user, None, 5.0)  # type: ignore[arg-type]
    assert again == "target:m"
    assert lookups == ["m"]
    for _ in range(2):
        with pytest.raises(routing.RoutingError):
            await cache.route("missing", CHAT_COMPLETIONS, user, None, 5.0)  # type: ignore[arg-type]
    assert lookups == ["m", "missing", "missing"]
    await cache.route("m", CHAT_COMPLETIONS, user, None, 0)  # type: ignore[arg-type]
    assert lookups[-1] == "m"  # no reuse when the cache is off
