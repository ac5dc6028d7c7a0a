"""Autostop: workspaces idle longer than their TTL are stopped.

The TTL is fixed on the row when the workspace is made
(``db.workspace_ttl.effective_ttl_s``),
so changing the site setting later does not suddenly stop old workspaces.
Stopping is claimed in one UPDATE with ``SKIP LOCKED``, so any number of
daemons may reap at once and each idle workspace is stopped by exactly one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from daemon.periodic import Periodic
from daemon.workspace_backend import WorkspaceBackend, stop_or_revert
from db.models import Workspace
from db.raw_sql import fetch, model_from

log = logging.getLogger(__name__)

REAP_INTERVAL_S = 60.0

# ``last_active_at < $1`` lets the (status, last_active_at) index narrow the scan;
# the TTL comparison then decides.
_CLAIM_IDLE = """
UPDATE workspaces SET status = 'stopped', stopped_at = $1, updated_at = $1
WHERE id IN (
  SELECT id FROM workspaces
  WHERE status = 'running' AND ttl_s IS NOT NULL AND last_active_at < $1
    AND last_active_at + make_interval(secs => ttl_s) < $1
  ORDER BY last_active_at
  FOR UPDATE SKIP LOCKED
)
RETURNING *
"""


async def stop_idle_workspaces(backend: WorkspaceBackend, now: datetime) -> list[uuid.UUID]:
    """Stops every running workspace idle past its TTL; returns the ones stopped.

    A workspace whose backend fails to stop goes back to running (the next
    round retries it) and is not in the result.
    """
    stopped: list[uuid.UUID] = []
    for row in await fetch(_CLAIM_IDLE, now):
        workspace = model_from(Workspace, row)
        try:
            await stop_or_revert(backend, workspace)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stopping an idle workspace failed", extra={"workspace": str(row["id"])})
            continue
        stopped.append(workspace.id)
    if stopped:
        log.info("stopped idle workspaces", extra={"count": len(stopped)})
    return stopped


class WorkspaceReaper:
    """Runs ``stop_idle_workspaces`` every ``interval_s`` until stopped."""

    def __init__(
        self,
        backend: WorkspaceBackend,
        *,
        interval_s: float = REAP_INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.rounds = 0
        self._round_done = asyncio.Condition()
        self._periodic = Periodic(interval_s, self._round, "reaping idle workspaces")

    async def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def wait_rounds(self, count: int) -> None:
        """Returns once ``count`` rounds (failed ones too) have finished since the start."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.rounds >= count)

    async def _round(self) -> None:
        try:
            await stop_idle_workspaces(self.backend, self.clock())
        finally:
            async with self._round_done:
                self.rounds += 1
                self._round_done.notify_all()
