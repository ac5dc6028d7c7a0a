"""The watcher publishes only what changed, on file events, commits and removal."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from daemon import git_watcher
from daemon.git_watcher import GitWatcher
from db.git_snapshots import RepoSnapshot
from db.vocabulary import WORKSPACE_MOUNT
from tests.daemon.test_git_scan import git, make_repo
from tests.daemon.tools.sandboxed import needs_bwrap

pytestmark = needs_bwrap

WAIT_S = 5.0

Published = asyncio.Queue[list[RepoSnapshot]]


class Recorder:
    """Collects every publish; can be told to fail the next one."""

    def __init__(self) -> None:
        self.queue: Published = asyncio.Queue()
        self.fail_next = False

    async def __call__(self, snapshots: list[RepoSnapshot]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("publish failed")
        await self.queue.put(snapshots)

    async def until(self, done: Callable[[dict[str, RepoSnapshot]], bool]) -> list[RepoSnapshot]:
        """Every publish up to and including the first that satisfies ``done``."""
        seen: list[RepoSnapshot] = []

        async def collect() -> None:
            while True:
                batch = await self.queue.get()
                seen.extend(batch)
                if done({s.root: s for s in batch}):
                    return

        await asyncio.wait_for(collect(), WAIT_S)
        return seen


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    make_repo(tmp_path / "ws" / "alpha", {"a.txt": "a\n"})
    make_repo(tmp_path / "ws" / "beta", {"b.txt": "b\n"})
    return tmp_path / "ws"


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def watcher(workspace: Path, recorder: Recorder) -> AsyncIterator[GitWatcher]:
    watching = GitWatcher(workspace, recorder, cooldown_s=0.05, poll_s=30.0)
    await watching.start()
    try:
        yield watching
    finally:
        await watching.stop()


def root(name: str = "") -> str:
    """A repository's root as published: the path inside the sandbox."""
    return f"{WORKSPACE_MOUNT}/{name}" if name else WORKSPACE_MOUNT


async def test_first_scan_publishes_every_repo(
    watcher: GitWatcher, recorder: Recorder, workspace: Path
) -> None:
    first = recorder.queue.get_nowait()
    assert [s.root for s in first] == [root("alpha"), root("beta")]
    assert watcher.latest == first


async def test_a_write_publishes_only_that_repo(
    watcher: GitWatcher, recorder: Recorder, workspace: Path
) -> None:
    recorder.queue.get_nowait()
    alpha, beta = root("alpha"), root("beta")

    (workspace / "alpha" / "new.txt").write_text("hello\n")
    seen = await recorder.until(
        lambda batch: "+hello" in getattr(batch.get(alpha), "unified_diff", "")
    )

    assert all(s.root == alpha for s in seen)
    assert beta not in {s.root for s in seen}
    assert [s.root for s in watcher.latest] == [alpha, beta]

    # A commit only touches .git/, and still empties the diff.
    git(workspace / "alpha", "add", "-A")
    git(workspace / "alpha", "commit", "-q", "-m", "add new")
    seen = await recorder.until(lambda batch: alpha in batch and batch[alpha].unified_diff == "")
    assert all(s.root == alpha for s in seen)


async def test_refresh_returns_everything_but_republishes_nothing(
    watcher: GitWatcher, recorder: Recorder, workspace: Path
) -> None:
    recorder.queue.get_nowait()
    current = await watcher.refresh()
    assert [s.root for s in current] == [root("alpha"), root("beta")]
    assert recorder.queue.empty()


async def test_a_deleted_repo_is_published_once_as_removed(
    watcher: GitWatcher, recorder: Recorder, workspace: Path
) -> None:
    recorder.queue.get_nowait()
    beta = root("beta")

    shutil.rmtree(workspace / "beta")
    seen = await recorder.until(lambda batch: beta in batch)

    [gone] = [s for s in seen if s.root == beta]
    assert gone.removed is True
    assert gone.unified_diff == ""
    assert (gone.additions, gone.deletions, gone.changed_files) == (0, 0, 0)
    assert [s.root for s in await watcher.refresh()] == [root("alpha")]
    assert recorder.queue.empty()


async def test_a_new_repo_is_published(
    watcher: GitWatcher, recorder: Recorder, workspace: Path
) -> None:
    recorder.queue.get_nowait()
    make_repo(workspace / "gamma", {"g.txt": "g\n"})
    seen = await recorder.until(lambda batch: root("gamma") in batch)
    assert {s.root for s in seen} == {root("gamma")}


async def test_a_failed_publish_is_offered_again(
    watcher: GitWatcher, recorder: Recorder, workspace: Path
) -> None:
    recorder.queue.get_nowait()
    alpha = root("alpha")
    await watcher.stop()  # only explicit refreshes from here on
    (workspace / "alpha" / "a.txt").write_text("changed\n")

    recorder.fail_next = True
    assert "+changed" in (await watcher.refresh())[0].unified_diff
    assert recorder.queue.empty()

    await watcher.refresh()
    [again] = recorder.queue.get_nowait()
    assert again.root == alpha
    assert "+changed" in again.unified_diff


async def test_a_failing_scan_keeps_watching(
    watcher: GitWatcher,
    recorder: Recorder,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder.queue.get_nowait()
    failures = 0

    real_scan = watcher.scanner.scan_workspace

    async def flaky(path: Path, max_depth: int = 3) -> list[RepoSnapshot]:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise OSError("disk hiccup")
        return await real_scan(path, max_depth)

    monkeypatch.setattr(watcher.scanner, "scan_workspace", flaky)
    assert len(await watcher.refresh()) == 2
    assert failures == 1

    alpha = root("alpha")
    (workspace / "alpha" / "later.txt").write_text("later\n")
    await recorder.until(lambda batch: alpha in batch)


async def test_polling_alone_notices_changes(
    tmp_path: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_events(*paths: Path, stop_event: asyncio.Event, **options: object):
        """A file system whose events never arrive."""
        await stop_event.wait()
        return
        yield

    monkeypatch.setattr(git_watcher, "awatch", no_events)
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    watching = GitWatcher(repo, recorder, cooldown_s=0.05, poll_s=0.1)
    await watching.start()
    try:
        recorder.queue.get_nowait()
        (repo / "a.txt").write_text("polled\n")
        await recorder.until(lambda batch: "+polled" in batch[root()].unified_diff)
    finally:
        await watching.stop()
