"""aiodataloader's private cache that ``SafeLoader`` reads is where it expects it.

``resolvers.dataloader_compat`` looks up the future a loader holds for a key in
``DataLoader._cache``. If an upgrade renames or reshapes that cache, these fail,
naming the installed version: a cancelled load would otherwise poison its key
for the rest of the operation again (or every load would fail).
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from importlib.metadata import version

from aiodataloader import DataLoader

from resolvers.dataloader_compat import CACHE, CHECKED_AGAINST, cached_future


def changed(what: str) -> str:
    return (
        f"aiodataloader {version('aiodataloader')} changed {what} (checked against "
        f"{CHECKED_AGAINST}): revisit resolvers/dataloader_compat.py"
    )


async def _doubled(keys: list[int]) -> list[int]:
    return [2 * k for k in keys]


async def _lengths(keys: list[str]) -> list[int]:
    return [len(k) for k in keys]


async def test_a_fresh_loader_has_an_empty_cache_mapping() -> None:
    loader = DataLoader(_doubled)
    assert hasattr(loader, CACHE), changed(f"DataLoader.{CACHE} (gone)")
    cache = getattr(loader, CACHE)
    assert isinstance(cache, MutableMapping), changed(f"{CACHE} (now {type(cache).__name__})")
    assert len(cache) == 0
    assert cached_future(loader, 1) is None


async def test_load_caches_the_future_it_returns_under_the_cache_key() -> None:
    loader = DataLoader(_doubled)
    future = loader.load(21)
    assert cached_future(loader, 21) is future, changed(f"what load stores in {CACHE}")
    assert await asyncio.wait_for(future, timeout=5) == 42
    assert cached_future(loader, 21) is future
    assert len(getattr(loader, CACHE)) == 1

    loader.clear(21)
    assert cached_future(loader, 21) is None, changed(f"clear (leaves the key in {CACHE})")


async def test_the_cache_is_keyed_by_get_cache_key() -> None:
    loader = DataLoader(_lengths, get_cache_key=str.lower)
    future = loader.load("ABC")
    assert cached_future(loader, "abc") is future, changed(f"the keys of {CACHE}")
    assert await asyncio.wait_for(future, timeout=5) == 3


async def test_a_cancelled_load_stays_cached_and_is_handed_out_again() -> None:
    """The trap ``SafeLoader`` works around: if this fails, upstream fixed it."""
    loader = DataLoader(_doubled)
    future = loader.load(1)
    future.cancel()
    assert cached_future(loader, 1) is future, changed(f"{CACHE} on cancellation")
    assert loader.load(1) is future, changed("load after a cancelled load of the same key")
