"""Git watchers for running workspaces: stored snapshots, ``git:<workspace>`` events,
and pull-request lookups queued when a bound chat's branch or origin moves."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.diff_status_worker import mark_stale
from daemon.git_watchers import GitWatchers
from daemon.sandbox import Sandbox, SandboxSettings
from daemon.tool_registry import ToolRegistry
from daemon.tools import ProcessTable, agent_tools
from daemon.turn_runner import Turn, run_turn
from daemon.workspace_backend import LocalWorkspaceBackend
from daemon.workspace_services import WorkspaceServices, WorkspaceSettings
from db.model_resolution import default_model_config
from db.models import Chat, ChatDiffStatus, ChatMessage, User, Workspace, WorkspaceGitSnapshot
from db.vocabulary import WORKSPACE_MOUNT, ChatStatus, MessageRole, WorkspaceStatus
from events.announcer import ChatAnnouncer
from events.channels import git_channel
from events.hub import EventHub, Subscription
from events.payloads import GitRefreshRequested, WorkAvailable
from events.wire import as_json
from tests.daemon.test_git_scan import git, make_repo
from tests.daemon.tools.sandboxed import needs_bwrap

pytestmark = needs_bwrap

WAIT_S = 5.0
ORIGIN = "git@github.com:acme/widgets.git"

Mark = tuple[uuid.UUID, str | None, str | None]


class Marks:
    """Records each ``mark_stale`` call, then marks the row as the worker would."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Mark] = asyncio.Queue()

    async def __call__(self, chat_id: uuid.UUID, branch: str | None, origin: str | None) -> None:
        await mark_stale(chat_id, branch, origin)
        self.queue.put_nowait((chat_id, branch, origin))

    async def next(self) -> Mark:
        return await asyncio.wait_for(self.queue.get(), WAIT_S)

    def pending(self) -> list[Mark]:
        seen = []
        while not self.queue.empty():
            seen.append(self.queue.get_nowait())
        return seen


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"gw{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture
async def hub() -> AsyncIterator[EventHub]:
    events = EventHub("memory://")
    await events.connect()
    yield events
    await events.disconnect()


@pytest.fixture
async def backend(owner: User, tmp_path: Path) -> LocalWorkspaceBackend:
    await Workspace.all().delete()  # a sync watches every running workspace
    return LocalWorkspaceBackend(tmp_path / "workspaces")


@pytest.fixture
def marks() -> Marks:
    return Marks()


@pytest.fixture
async def watchers(
    backend: LocalWorkspaceBackend, hub: EventHub, marks: Marks
) -> AsyncIterator[GitWatchers]:
    watching = GitWatchers(backend, ChatAnnouncer(hub), marks, cooldown_s=0.05, poll_s=30.0)
    yield watching
    await watching.close()


async def new_workspace(
    owner: User,
    backend: LocalWorkspaceBackend,
    *,
    status: WorkspaceStatus = WorkspaceStatus.RUNNING,
) -> tuple[uuid.UUID, Path]:
    workspace_id = uuid.uuid4()
    directory = backend.root / str(workspace_id)
    directory.mkdir(parents=True)
    await Workspace.create(
        id=workspace_id,
        owner_id=owner.id,
        name="w",
        directory=str(workspace_id),
        status=status,
        last_active_at=datetime.now(UTC),
    )
    return workspace_id, directory.resolve()


async def bound_chat(owner: User, workspace_id: uuid.UUID, *, archived: bool = False) -> uuid.UUID:
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        workspace_id=workspace_id,
        archived=archived,
        title="t",
        updated_at=datetime.now(UTC),
    )
    return chat_id


async def next_event(subscription: Subscription) -> dict[str, Any]:
    return as_json(await subscription.get(timeout=WAIT_S))


async def snapshot(workspace_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    row = await WorkspaceGitSnapshot.get(workspace_id=workspace_id)
    return {repo["root"]: repo for repo in row.repositories}


async def test_a_running_workspace_is_snapshotted_and_its_changes_published(
    owner: User, backend: LocalWorkspaceBackend, hub: EventHub, watchers: GitWatchers
) -> None:
    workspace_id, directory = await new_workspace(owner, backend)
    make_repo(directory, {"README.md": "hello\n"})
    root = WORKSPACE_MOUNT  # the workspace itself is the repository

    async with hub.subscribe(git_channel(workspace_id)) as events:
        await watchers.sync()
        first = await next_event(events)
        assert set(watchers.watchers) == {workspace_id}
        assert first["kind"] == "git"
        assert first["workspaceId"] == str(workspace_id)
        assert (first["changed"], first["removed"]) == ([root], [])
        assert await snapshot(workspace_id) == {
            root: {
                "root": root,
                "branch": "main",
                "remoteOrigin": None,
                "unifiedDiff": "",
                "removed": False,
                "additions": 0,
                "deletions": 0,
                "changedFiles": 0,
            }
        }

        (directory / "notes.txt").write_text("one\ntwo\n")
        changed = await next_event(events)

    assert (changed["changed"], changed["removed"]) == ([root], [])
    scanned_at = datetime.fromisoformat(changed["scannedAt"])
    assert scanned_at > datetime.fromisoformat(first["scannedAt"])
    repo = (await snapshot(workspace_id))[root]
    assert "+++ b/notes.txt" in repo["unifiedDiff"]
    assert (repo["additions"], repo["deletions"], repo["changedFiles"]) == (2, 0, 1)
    assert (await WorkspaceGitSnapshot.get(workspace_id=workspace_id)).scanned_at == scanned_at


async def test_an_agent_turn_s_write_reaches_the_snapshot(
    app: Starlette,
    owner: User,
    backend: LocalWorkspaceBackend,
    hub: EventHub,
    watchers: GitWatchers,
) -> None:
    workspace_id, directory = await new_workspace(owner, backend)
    make_repo(directory, {"README.md": "hello\n"})
    config = await default_model_config()
    assert config is not None
    chat_id, worker, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        workspace_id=workspace_id,
        title="Named by hand",
        status=ChatStatus.RUNNING,
        worker_id=worker,
        started_at=now,
        model_config_id=config.id,
        updated_at=now,
    )
    write = {"path": "src/cache.py", "content": "CACHE = {}\n"}
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": f"/tool write_file {json.dumps(write)}"}],
        model_config_id=config.id,
    )
    processes = ProcessTable()
    turn = Turn(
        chat_id=chat_id,
        owner_id=owner.id,
        model_config_id=config.id,
        worker_id=worker,
        events=ChatAnnouncer(hub),
        secrets=app.state.secrets,
        tools=ToolRegistry(agent_tools(processes)),
        started_at=now,
        backend=backend,
    )
    async with hub.subscribe(git_channel(workspace_id)) as events:
        await watchers.sync()
        await next_event(events)
        try:
            assert await run_turn(turn) is True
        finally:
            await processes.close_all()
        changed = await next_event(events)
    assert changed["changed"] == [WORKSPACE_MOUNT]
    repo = (await snapshot(workspace_id))[WORKSPACE_MOUNT]
    assert "+++ b/src/cache.py" in repo["unifiedDiff"]
    assert "+CACHE = {}" in repo["unifiedDiff"]
    assert repo["changedFiles"] == 1


async def test_only_changed_repositories_are_announced_and_removals_too(
    owner: User, backend: LocalWorkspaceBackend, hub: EventHub, watchers: GitWatchers
) -> None:
    workspace_id, directory = await new_workspace(owner, backend)
    alpha = make_repo(directory / "alpha", {"a.txt": "a\n"})
    beta = make_repo(directory / "beta", {"b.txt": "b\n"})
    roots = [f"{WORKSPACE_MOUNT}/alpha", f"{WORKSPACE_MOUNT}/beta"]

    async with hub.subscribe(git_channel(workspace_id)) as events:
        await watchers.sync()
        assert (await next_event(events))["changed"] == roots

        (alpha / "a.txt").write_text("A\n")
        assert (await next_event(events))["changed"] == [roots[0]]
        assert (await snapshot(workspace_id))[roots[0]]["deletions"] == 1

        # A client's refresh announces every repository, changed or not.
        assert await watchers.refresh(workspace_id) is True
        refreshed = await next_event(events)
        assert (refreshed["changed"], refreshed["removed"]) == (roots, [])

        beta.rename(backend.root / "beta-moved-away")  # at once: no half-deleted scan
        gone = await next_event(events)
        assert (gone["changed"], gone["removed"]) == ([], [roots[1]])
    assert list(await snapshot(workspace_id)) == [roots[0]]


async def test_a_bound_chat_is_queued_for_a_pull_request_lookup_when_its_branch_moves(
    owner: User,
    backend: LocalWorkspaceBackend,
    hub: EventHub,
    watchers: GitWatchers,
    marks: Marks,
) -> None:
    workspace_id, directory = await new_workspace(owner, backend)
    make_repo(directory, {"README.md": "hello\n"})
    chat_id = await bound_chat(owner, workspace_id)
    await bound_chat(owner, workspace_id, archived=True)  # never looked up
    await bound_chat(owner, uuid.uuid4())  # another workspace's chat

    await watchers.sync()
    assert await marks.next() == (chat_id, "main", None)
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert (row.git_branch, row.git_remote_origin) == ("main", None)
    assert row.stale_at is not None

    # An edit on the same branch is not a reason to ask the provider again. A refresh
    # waits for the watcher's publish in flight, so every mark is in by then.
    async with hub.subscribe(git_channel(workspace_id)) as events:
        (directory / "README.md").write_text("edited\n")
        await next_event(events)
    await watchers.refresh(workspace_id)
    assert marks.pending() == []

    git(directory, "checkout", "-q", "-b", "feature")
    assert await marks.next() == (chat_id, "feature", None)
    assert (await ChatDiffStatus.get(chat_id=chat_id)).git_branch == "feature"

    git(directory, "remote", "add", "origin", ORIGIN)
    assert await marks.next() == (chat_id, "feature", ORIGIN)
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert (row.git_branch, row.git_remote_origin) == ("feature", ORIGIN)
    await watchers.refresh(workspace_id)
    assert marks.pending() == []


async def test_only_running_workspaces_with_a_directory_are_watched(
    owner: User, backend: LocalWorkspaceBackend, watchers: GitWatchers
) -> None:
    running, _ = await new_workspace(owner, backend)
    stopped, _ = await new_workspace(owner, backend, status=WorkspaceStatus.STOPPED)
    missing, gone = await new_workspace(owner, backend)
    gone.rmdir()

    await watchers.sync()
    assert set(watchers.watchers) == {running}
    assert not await WorkspaceGitSnapshot.filter(workspace_id__in=[stopped, missing]).exists()

    await Workspace.filter(id=running).update(status=WorkspaceStatus.STOPPED)
    await Workspace.filter(id=stopped).update(status=WorkspaceStatus.RUNNING)
    await watchers.sync()
    assert set(watchers.watchers) == {stopped}
    assert await watchers.refresh(missing) is False


async def test_workspace_services_refresh_on_request_and_watch_after_a_turn(
    owner: User, backend: LocalWorkspaceBackend, hub: EventHub
) -> None:
    settings = WorkspaceSettings(git_cooldown_s=0.05, pull_requests=False)
    services = WorkspaceServices(backend, ChatAnnouncer(hub), settings)
    try:
        workspace_id, directory = await new_workspace(owner, backend)
        make_repo(directory, {"README.md": "hello\n"})
        async with hub.subscribe(git_channel(workspace_id)) as events:
            # A turn that bound a workspace: it is watched at once, not at the next sync.
            await services.turn_ended(uuid.uuid4(), workspace_id)
            assert (await next_event(events))["changed"] == [WORKSPACE_MOUNT]
            assert workspace_id in services.git.watchers

            assert await services.handle(GitRefreshRequested(workspace_id)) is True
            assert (await next_event(events))["changed"] == [WORKSPACE_MOUNT]
        assert await services.handle(WorkAvailable(uuid.uuid4())) is False
    finally:
        await services.stop()
    assert services.git.watchers == {}


async def test_without_a_usable_sandbox_nothing_is_scanned_and_the_operator_is_told(
    owner: User,
    backend: LocalWorkspaceBackend,
    hub: EventHub,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    workspace_id, directory = await new_workspace(owner, backend)
    make_repo(directory, {"a.txt": "a\n", ".gitattributes": "a.txt filter=x\n"})
    git(directory, "config", "filter.x.clean", f"touch {host}/clean; cat")
    (directory / "a.txt").write_text("changed\n")
    unusable = Sandbox(bwrap=str(tmp_path / "no-such-bwrap"))
    settings = WorkspaceSettings(git_cooldown_s=0.05, pull_requests=False)
    services = WorkspaceServices(
        backend, ChatAnnouncer(hub), settings, processes=ProcessTable(sandbox=unusable)
    )
    try:
        with caplog.at_level(logging.WARNING, logger="daemon.git_watchers"):
            await services.turn_ended(uuid.uuid4(), workspace_id)
            await services.git.sync()
            assert await services.git.refresh(workspace_id) is False
    finally:
        await services.stop()

    assert services.git.watchers == {}
    assert not await WorkspaceGitSnapshot.filter(workspace_id=workspace_id).exists()
    assert os.listdir(host) == []
    told = [r.getMessage() for r in caplog.records if "git diffs are off" in r.getMessage()]
    assert len(told) == 1
    assert "bubblewrap" in told[0]


async def test_sandbox_none_scans_on_the_host_and_says_it_is_unsafe(
    owner: User, backend: LocalWorkspaceBackend, hub: EventHub, caplog: pytest.LogCaptureFixture
) -> None:
    workspace_id, directory = await new_workspace(owner, backend)
    make_repo(directory, {"a.txt": "a\n"})
    unsandboxed = Sandbox(SandboxSettings(mode="none"))
    watching = GitWatchers(backend, ChatAnnouncer(hub), cooldown_s=0.05, sandbox=unsandboxed)
    try:
        with caplog.at_level(logging.WARNING, logger="daemon.git_watchers"):
            await watching.sync()
            await watching.sync()
    finally:
        await watching.close()

    assert WORKSPACE_MOUNT in await snapshot(workspace_id)
    told = [r.getMessage() for r in caplog.records if "AGENTGQL_SANDBOX=none" in r.getMessage()]
    assert len(told) == 1
