"""Running a daemon chore on an interval, surviving its failures.

Every background chore (retention purge, workspace reaper, diff-status
refresh) has the same shape: run, log a failure without dying, sleep, repeat
until cancelled. One loop, so each chore is only its own work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def every(interval_s: float, chore: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run ``chore`` now and then every ``interval_s`` seconds until cancelled."""
    while True:
        try:
            await chore()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", name)
        await asyncio.sleep(interval_s)


class Periodic:
    """A chore as a task with start/stop, for owners that manage several."""

    def __init__(self, interval_s: float, chore: Callable[[], Awaitable[Any]], name: str) -> None:
        self.interval_s = interval_s
        self.chore = chore
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(every(self.interval_s, self.chore, self.name))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():  # our caller was cancelled, not just the chore
                raise
