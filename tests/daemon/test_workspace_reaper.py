"""Idle workspaces stop once their TTL passes, each exactly once, whoever reaps."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.workspace_reaper import WorkspaceReaper, stop_idle_workspaces
from db.models import User, Workspace
from db.vocabulary import WorkspaceStatus
from db.workspace_ttl import effective_ttl_s

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


class RecordingBackend:
    """Records stops; ``fail`` names workspaces whose stop raises."""

    def __init__(self, fail: frozenset[uuid.UUID] = frozenset()) -> None:
        self.stopped: list[uuid.UUID] = []
        self.fail = fail

    async def create(self, workspace_id: uuid.UUID, template: object) -> Path:
        raise NotImplementedError

    async def start(self, workspace: Workspace) -> Path:
        raise NotImplementedError

    async def stop(self, workspace: Workspace) -> None:
        await asyncio.sleep(0)  # lets concurrent reapers interleave
        if workspace.id in self.fail:
            raise RuntimeError("the hypervisor is on fire")
        self.stopped.append(workspace.id)

    def path(self, workspace: Workspace) -> Path:
        return Path("/nonexistent") / workspace.directory

    async def destroy(self, workspace: Workspace) -> None:
        raise NotImplementedError


@pytest.fixture
async def owner(app) -> User:
    await Workspace.all().delete()  # each test reaps the whole table
    return await User.create(username=f"r{uuid.uuid4().hex[:8]}", password_hash="x")


async def workspace(
    owner: User,
    *,
    idle: timedelta,
    ttl_s: int | None,
    status: WorkspaceStatus = WorkspaceStatus.RUNNING,
) -> uuid.UUID:
    workspace_id = uuid.uuid4()
    await Workspace.create(
        id=workspace_id,
        owner=owner,
        name="w",
        directory=str(workspace_id),
        status=status,
        ttl_s=ttl_s,
        last_active_at=NOW - idle,
    )
    return workspace_id


def test_effective_ttl_uses_the_template_default_only_for_zero() -> None:
    assert effective_ttl_s(0, None) is None
    assert effective_ttl_s(0, 7200) == 7200
    assert effective_ttl_s(3600, 7200) == 3600
    assert effective_ttl_s(3600, None) == 3600


async def test_only_running_workspaces_idle_past_their_ttl_stop(owner: User) -> None:
    idle = await workspace(owner, idle=timedelta(minutes=11), ttl_s=600)
    fresh = await workspace(owner, idle=timedelta(minutes=9), ttl_s=600)
    forever = await workspace(owner, idle=timedelta(days=90), ttl_s=None)
    stopped = await workspace(
        owner, idle=timedelta(days=1), ttl_s=60, status=WorkspaceStatus.STOPPED
    )
    backend = RecordingBackend()

    assert await stop_idle_workspaces(backend, NOW) == [idle]
    assert backend.stopped == [idle]
    rows = {w.id: w for w in await Workspace.all()}
    assert (rows[idle].status, rows[idle].stopped_at) == (WorkspaceStatus.STOPPED, NOW)
    assert rows[fresh].status == rows[forever].status == WorkspaceStatus.RUNNING
    assert rows[stopped].stopped_at is None  # untouched

    assert await stop_idle_workspaces(backend, NOW) == []  # nothing left to do
    assert await stop_idle_workspaces(backend, NOW + timedelta(minutes=2)) == [fresh]


async def test_a_failed_stop_leaves_the_workspace_running_for_the_next_round(
    owner: User,
) -> None:
    broken = await workspace(owner, idle=timedelta(hours=2), ttl_s=60)
    fine = await workspace(owner, idle=timedelta(hours=1), ttl_s=60)

    assert await stop_idle_workspaces(RecordingBackend(fail=frozenset({broken})), NOW) == [fine]
    row = await Workspace.get(id=broken)
    assert (row.status, row.stopped_at) == (WorkspaceStatus.RUNNING, None)
    assert await stop_idle_workspaces(RecordingBackend(), NOW) == [broken]


async def test_concurrent_reapers_stop_each_workspace_once(owner: User) -> None:
    ids = {await workspace(owner, idle=timedelta(hours=1), ttl_s=60) for _ in range(12)}
    backends = [RecordingBackend() for _ in range(3)]
    results = await asyncio.gather(*(stop_idle_workspaces(b, NOW) for b in backends))
    stopped = [w for result in results for w in result]
    assert sorted(stopped) == sorted(ids)
    assert sorted(w for b in backends for w in b.stopped) == sorted(ids)


async def test_the_periodic_reaper_runs_until_stopped(owner: User) -> None:
    idle = await workspace(owner, idle=timedelta(hours=1), ttl_s=60)
    backend = RecordingBackend()
    reaper = WorkspaceReaper(backend, interval_s=0.01, clock=lambda: NOW)
    await reaper.start()
    try:
        async with asyncio.timeout(5):
            await reaper.wait_rounds(3)
    finally:
        await reaper.stop()
    assert backend.stopped == [idle]  # stopped once, however many rounds ran
    await reaper.stop()  # idempotent
