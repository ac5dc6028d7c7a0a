"""Keeps each chat's pull-request status current, off the request path.

The git watcher marks a chat's row stale when it sees its branch or origin;
any number of workers claim stale rows with ``SKIP LOCKED`` and hold them
with a lease (``lease_until``), so each refresh happens once and a crashed
worker's rows come back when the lease runs out. The provider is called with
no transaction open. A worker writes its result only while it still holds
the lease, and clears ``stale_at`` only if nobody marked the row again
meanwhile, so a branch change during a refresh is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from daemon.git_providers.base import GitProvider, GitProviderError, PullRequest
from db.models.workspace import PULL_REQUEST_FIELDS
from db.raw_sql import fetch
from db.text_rules import storable
from db.vocabulary import DIFF_STATUS_LEASE_S

log = logging.getLogger(__name__)

Publish = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]

_MARK_STALE = """
INSERT INTO chat_diff_statuses (chat_id, git_branch, git_remote_origin, stale_at, updated_at)
VALUES ($1, $2, $3, now(), now())
ON CONFLICT (chat_id) DO UPDATE SET git_branch = EXCLUDED.git_branch,
  git_remote_origin = EXCLUDED.git_remote_origin, stale_at = now(), updated_at = now()
"""
_CLAIM = f"""
UPDATE chat_diff_statuses d SET lease_until = now() + $2::interval
FROM chats c
WHERE c.id = d.chat_id AND d.chat_id IN (
  SELECT s.chat_id FROM chat_diff_statuses s JOIN chats sc ON sc.id = s.chat_id
  WHERE s.stale_at <= now() AND (s.lease_until IS NULL OR s.lease_until < now())
    AND NOT sc.archived
  ORDER BY s.stale_at LIMIT $1
  FOR UPDATE OF s SKIP LOCKED
)
RETURNING d.chat_id, c.owner_id, d.git_branch, d.git_remote_origin, d.stale_at,
  d.lease_until, {", ".join(f"d.{name}" for name in PULL_REQUEST_FIELDS)}
"""
_ASSIGNMENTS = ", ".join(f"{name} = ${i}" for i, name in enumerate(PULL_REQUEST_FIELDS, start=4))
_STORE = f"""
UPDATE chat_diff_statuses SET {_ASSIGNMENTS}, remote_diff = ${len(PULL_REQUEST_FIELDS) + 4},
  stale_at = CASE WHEN stale_at = $3 THEN NULL ELSE stale_at END,
  lease_until = NULL, refreshed_at = now(), updated_at = now()
WHERE chat_id = $1 AND lease_until = $2
RETURNING chat_id
"""
_RELEASE = """
UPDATE chat_diff_statuses SET lease_until = NULL,
  stale_at = CASE WHEN stale_at = $3 THEN now() + $4::interval ELSE stale_at END
WHERE chat_id = $1 AND lease_until = $2
"""


async def mark_stale(chat_id: uuid.UUID, branch: str | None, remote_origin: str | None) -> None:
    """Records a chat's branch and origin and queues a refresh (creates the row)."""
    await fetch(_MARK_STALE, chat_id, branch, remote_origin)


def visible_values(pr: PullRequest | None) -> tuple[Any, ...]:
    """The row's PULL_REQUEST_FIELDS for ``pr`` (all None when there is no PR)."""
    if pr is None:
        return (None,) * len(PULL_REQUEST_FIELDS)
    return (
        pr.url,
        str(pr.state),
        pr.title,
        pr.number,
        pr.base_branch,
        pr.head_branch,
        pr.author_login,
        pr.commits,
        pr.approved,
        pr.reviewer_count,
        pr.changes_requested,
        pr.additions,
        pr.deletions,
        pr.changed_files,
    )


class DiffStatusWorker:
    def __init__(
        self,
        provider: GitProvider,
        publish: Publish,
        *,
        lease_s: float = DIFF_STATUS_LEASE_S,
        batch: int = 10,
        worker_id: uuid.UUID | None = None,
        interval_s: float = 30.0,
        retry_s: float = 60.0,
    ) -> None:
        self.provider = provider
        self.publish = publish
        self.lease = timedelta(seconds=lease_s)
        self.batch = batch
        self.worker_id = worker_id or uuid.uuid4()
        self.interval_s = interval_s
        # After a provider error the row stays stale but is not due again until then.
        self.retry = timedelta(seconds=retry_s)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def mark_stale(
        self, chat_id: uuid.UUID, branch: str | None, remote_origin: str | None
    ) -> None:
        await mark_stale(chat_id, branch, remote_origin)
        self._wake.set()

    async def run_once(self) -> int:
        """Claims and refreshes up to ``batch`` stale rows; returns how many it claimed."""
        rows = await fetch(_CLAIM, self.batch, self.lease)
        for row in rows:
            await self._refresh(row)
        return len(rows)

    async def _refresh(self, row: Any) -> None:
        chat_id, branch, origin = row["chat_id"], row["git_branch"], row["git_remote_origin"]
        claim = (chat_id, row["lease_until"], row["stale_at"])
        try:
            pr, diff = await self._look_up(origin, branch)
        except asyncio.CancelledError:
            await fetch(_RELEASE, *claim, timedelta(0))
            raise
        except GitProviderError as exc:
            log.warning(
                "pull request lookup failed; will retry",
                extra={"chat_id": str(chat_id), "worker": str(self.worker_id), "error": str(exc)},
            )
            await fetch(_RELEASE, *claim, self.retry)
            return
        # The provider's text as PostgreSQL can store it (a PR title or diff may hold NUL).
        new, diff = tuple(storable(list(visible_values(pr)))), storable(diff)
        if not await fetch(_STORE, *claim, *new, diff):
            return  # the lease ran out and someone else has the row now
        if new != tuple(row[name] for name in PULL_REQUEST_FIELDS):
            try:
                await self.publish(row["owner_id"], chat_id)
            except Exception:
                log.exception("publishing a diff status change failed")

    async def _look_up(
        self, origin: str | None, branch: str | None
    ) -> tuple[PullRequest | None, str | None]:
        if not origin or not branch or not self.provider.handles(origin):
            return None, None
        pr = await self.provider.find_pull_request(origin, branch)
        if pr is None:
            return None, None
        return pr, await self.provider.pull_request_diff(origin, pr.number)

    # -- the loop ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="diff-status-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refreshing diff statuses failed")
                claimed = 0
            if claimed >= self.batch:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
