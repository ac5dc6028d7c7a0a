"""Keeps one workspace's repository snapshots fresh and publishes what changed.

Agents edit files and commit while a turn runs, and the UI wants to see the
diff move. File-system events (including ``.git/`` ones, since a commit
changes the diff) trigger a rescan after a short cooldown that lets a burst of
writes settle; a slow poll catches anything the events miss (a watch that
could not be set up, a workspace replaced wholesale). Only repositories whose
snapshot differs from the last one published are passed on, so an idle
workspace costs a scan per poll and nothing downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from daemon.git_scan import GitScanner, GitScanUnavailable
from daemon.sandbox import Sandbox
from db.git_snapshots import RepoSnapshot, host_path

log = logging.getLogger(__name__)

OnChange = Callable[[list[RepoSnapshot]], Awaitable[None]]


class GitWatcher:
    """Watches one workspace directory; see the module docstring."""

    def __init__(
        self,
        workspace: Path,
        on_change: OnChange,
        *,
        cooldown_s: float = 1.0,
        poll_s: float = 30.0,
        max_depth: int = 3,
        scanner: GitScanner | None = None,
    ) -> None:
        self.workspace = workspace
        self.scanner = scanner or GitScanner(Sandbox())
        self.cooldown_s = cooldown_s
        self.poll_s = poll_s
        self.max_depth = max_depth
        self._on_change = on_change
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._watching = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._latest: list[RepoSnapshot] = []
        self._published: dict[str, RepoSnapshot] = {}

    @property
    def latest(self) -> list[RepoSnapshot]:
        """The current repositories as of the last scan, sorted by root."""
        return list(self._latest)

    async def start(self) -> None:
        """Begin watching, then scan and publish every repository once."""
        if self._tasks:
            return
        self._stop.clear()
        self._watching.clear()
        self._tasks.append(asyncio.create_task(self._watch_loop()))
        # Set once the watch is registered, so no write after start() is missed.
        await self._watching.wait()
        await self._scan_and_publish()
        self._tasks.append(asyncio.create_task(self._scan_loop()))

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def refresh(self) -> list[RepoSnapshot]:
        """Rescan now, publish what changed, and return every current repository."""
        return await self._scan_and_publish()

    async def _watch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._watching.set()
                async for _changes in awatch(
                    self.workspace, watch_filter=_relevant, stop_event=self._stop
                ):
                    self._wake.set()
            except Exception:
                log.warning("watching %s failed; polling only", self.workspace, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_s)

    async def _scan_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            if self._stop.is_set():
                return
            if self._wake.is_set():
                await asyncio.sleep(self.cooldown_s)  # let a burst of writes settle
            self._wake.clear()
            await self._scan_and_publish()

    async def _scan_and_publish(self) -> list[RepoSnapshot]:
        async with self._lock:
            try:
                scanned = await self.scanner.scan_workspace(self.workspace, self.max_depth)
            except GitScanUnavailable as exc:
                log.warning("not scanning %s: %s", self.workspace, exc)
                return self.latest
            except Exception:
                log.warning("scanning %s failed", self.workspace, exc_info=True)
                return self.latest
            current, changed = self._diff_against_published(scanned)
            self._latest = current
            if changed:
                try:
                    await self._on_change(changed)
                except Exception:
                    # Left unpublished, so the next scan offers them again.
                    log.warning("publishing repository changes failed", exc_info=True)
                    return self.latest
                for snapshot in changed:
                    if snapshot.removed:
                        self._published.pop(snapshot.root, None)
                    else:
                        self._published[snapshot.root] = snapshot
            return self.latest

    def _diff_against_published(
        self, scanned: list[RepoSnapshot]
    ) -> tuple[list[RepoSnapshot], list[RepoSnapshot]]:
        """(current repositories, those to publish). A published repository
        missing from the scan but still holding ``.git`` failed to scan this
        time; it keeps its last snapshot rather than flickering to removed."""
        by_root = {snapshot.root: snapshot for snapshot in scanned}
        changed = [s for s in scanned if self._published.get(s.root) != s]
        for root, previous in self._published.items():
            if root in by_root:
                continue
            if os.path.lexists(host_path(self.workspace, root) / ".git"):
                by_root[root] = previous
                continue
            changed.append(_removed(previous))
        return [by_root[root] for root in sorted(by_root)], changed


def _removed(previous: RepoSnapshot) -> RepoSnapshot:
    return RepoSnapshot(
        root=previous.root,
        branch=previous.branch,
        remote_origin=previous.remote_origin,
        unified_diff="",
        removed=True,
        additions=0,
        deletions=0,
        changed_files=0,
    )


def _relevant(change: Change, path: str) -> bool:
    """Object writes always come with a ref or index change, and dependency
    trees are ignored by git; both would only cause empty rescans."""
    parts = Path(path).parts
    if "node_modules" in parts:
        return False
    return not any(
        part == ".git" and parts[index + 1] == "objects" for index, part in enumerate(parts[:-1])
    )
