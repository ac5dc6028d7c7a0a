"""The one place agentgql reaches into aiodataloader beyond its public API.

aiodataloader keeps every future ``load`` handed out in ``DataLoader._cache``,
keyed by ``get_cache_key(key)``, including cancelled and failed ones, and has no
public way to look one up. ``SafeLoader`` reads it to drop such a future before
loading the key again (otherwise the key raises ``CancelledError`` for the rest
of the operation).

Checked against aiodataloader 0.4.3 (the pin in ``pyproject.toml``).
``tests/resolvers/test_dataloader_compat.py`` fails if an upgrade renames or
reshapes the cache, and ``tests/test_private_apis.py`` fails if any other
module reads it.
"""

from __future__ import annotations

from asyncio import Future
from collections.abc import Mapping
from typing import Any

from aiodataloader import DataLoader

CHECKED_AGAINST = "0.4.3"
"""The aiodataloader version this surface was last checked against."""

CACHE = "_cache"
"""The loader attribute mapping cache keys to the futures ``load`` returned."""

PRIVATE_NAMES = frozenset({CACHE})
"""Every private aiodataloader name agentgql uses, all of them here."""


def cached_future(loader: DataLoader[Any, Any], key: Any) -> Future[Any] | None:
    """The future ``loader`` holds for ``key`` (None if it has none)."""
    cache: Mapping[Any, Future[Any]] = getattr(loader, CACHE)
    return cache.get(loader.get_cache_key(key))
