"""Where workspaces' files live, and the rows that record them.

The backend is a Protocol so a remote one (containers, VMs) can replace the
local one without touching callers. The local backend keeps each workspace in
``root/<workspace id>`` and builds it in a scratch directory first, renaming
it into place only when complete: a failed clone or copy leaves nothing behind.
Rows store only the directory's name, so the root can move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from db.models import Workspace, WorkspaceTemplate
from db.vocabulary import WorkspaceSourceKind, WorkspaceStatus

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 300.0
_SCRATCH_PREFIX = ".creating-"


class WorkspaceError(Exception):
    """A workspace could not be made, found or removed; the message says why."""


class WorkspaceBackend(Protocol):
    async def create(self, workspace_id: uuid.UUID, template: WorkspaceTemplate | None) -> Path:
        """Makes the workspace's files; returns their directory (named for the row)."""
        ...

    async def start(self, workspace: Workspace) -> Path: ...

    async def stop(self, workspace: Workspace) -> None: ...

    def path(self, workspace: Workspace) -> Path: ...

    async def destroy(self, workspace: Workspace) -> None: ...


class LocalWorkspaceBackend:
    """Plain directories on this machine; "running" needs nothing but the files."""

    def __init__(self, root: Path, *, git_timeout_s: float = GIT_TIMEOUT_S) -> None:
        self.root = root
        self.git_timeout_s = git_timeout_s

    async def create(self, workspace_id: uuid.UUID, template: WorkspaceTemplate | None) -> Path:
        final = self.root / str(workspace_id)
        if final.exists():
            raise WorkspaceError(f"workspace directory {final.name} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = self.root / f"{_SCRATCH_PREFIX}{workspace_id}-{uuid.uuid4().hex[:8]}"
        try:
            await self._populate(scratch, template)
            scratch.rename(final)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
            raise
        return final

    async def _populate(self, target: Path, template: WorkspaceTemplate | None) -> None:
        if template is None:
            await self._git("init", "--quiet", str(target))  # creates the directory
        elif template.source_kind == WorkspaceSourceKind.GIT:
            await self._git("clone", "--quiet", "--", template.source, str(target))
        elif template.source_kind == WorkspaceSourceKind.DIRECTORY:
            source = Path(template.source)
            if not await asyncio.to_thread(source.is_dir):
                raise WorkspaceError(f"template {template.name!r}: {source} is not a directory")
            try:
                await asyncio.to_thread(shutil.copytree, source, target, symlinks=True)
            except (OSError, shutil.Error) as exc:
                raise WorkspaceError(f"template {template.name!r}: copy failed: {exc}") from exc
        else:
            raise WorkspaceError(f"template {template.name!r}: unknown source kind")

    async def _git(self, *args: str) -> None:
        """Runs git without a terminal: a clone that wants credentials fails, not hangs."""
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
        try:
            process = await asyncio.create_subprocess_exec(
                "git",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise WorkspaceError(f"cannot run git: {exc}") from exc
        try:
            async with asyncio.timeout(self.git_timeout_s):
                _, stderr = await process.communicate()
        except TimeoutError:
            raise WorkspaceError(f"git {args[0]} timed out after {self.git_timeout_s:g}s") from None
        finally:
            if process.returncode is None:  # timed out or cancelled: no orphan git
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode != 0:
            detail = stderr.decode(errors="replace").strip() or f"exit code {process.returncode}"
            raise WorkspaceError(f"git {args[0]} failed: {detail}")

    async def start(self, workspace: Workspace) -> Path:
        path = self.path(workspace)
        if not await asyncio.to_thread(path.is_dir):
            raise WorkspaceError(f"workspace {workspace.id} has no directory")
        return path

    async def stop(self, workspace: Workspace) -> None:
        """Nothing runs on its own in a local directory, so there is nothing to stop."""

    def path(self, workspace: Workspace) -> Path:
        name = workspace.directory
        if not name or name in {".", ".."} or "/" in name or os.sep in name:
            raise WorkspaceError(f"workspace {workspace.id} has an invalid directory {name!r}")
        return self.root / name

    async def destroy(self, workspace: Workspace) -> None:
        path = self.path(workspace)
        await asyncio.to_thread(shutil.rmtree, path, True)
        if path.exists():
            raise WorkspaceError(f"workspace {workspace.id}: could not remove its directory")


# -- rows ------------------------------------------------------------------------------


async def create_workspace(
    backend: WorkspaceBackend,
    *,
    owner_id: uuid.UUID,
    name: str,
    template: WorkspaceTemplate | None,
    ttl_s: int | None,
    now: datetime | None = None,
) -> Workspace:
    """Files first, then the row: a row always has its directory. If the insert
    fails, the files are removed again."""
    workspace_id = uuid.uuid4()
    path = await backend.create(workspace_id, template)
    stamp = now or datetime.now(UTC)
    workspace = Workspace(
        id=workspace_id,
        owner_id=owner_id,
        template=template,
        name=name,
        directory=path.name,
        status=WorkspaceStatus.RUNNING,
        ttl_s=ttl_s,
        last_active_at=stamp,
    )
    try:
        await workspace.save(force_create=True)
    except BaseException:
        await backend.destroy(workspace)
        raise
    return workspace


async def touch_workspace(workspace_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Records activity (pushes back the TTL); false when there is no such workspace."""
    stamp = now or datetime.now(UTC)
    updated = await Workspace.filter(id=workspace_id).update(last_active_at=stamp)
    return updated > 0


async def start_workspace(
    backend: WorkspaceBackend, workspace_id: uuid.UUID, now: datetime | None = None
) -> Path:
    workspace = await Workspace.get_or_none(id=workspace_id)
    if workspace is None:
        raise WorkspaceError(f"no workspace {workspace_id}")
    path = await backend.start(workspace)
    stamp = now or datetime.now(UTC)
    await Workspace.filter(id=workspace_id).update(
        status=WorkspaceStatus.RUNNING, stopped_at=None, last_active_at=stamp
    )
    return path


async def stop_workspace(
    backend: WorkspaceBackend, workspace_id: uuid.UUID, now: datetime | None = None
) -> bool:
    """Stops a running workspace; false when it was not running (or is gone).

    The status flips first, conditionally, so of two concurrent stops only one
    reaches the backend; if the backend fails the row goes back to running.
    """
    stamp = now or datetime.now(UTC)
    flipped = await Workspace.filter(id=workspace_id, status=WorkspaceStatus.RUNNING).update(
        status=WorkspaceStatus.STOPPED, stopped_at=stamp
    )
    if not flipped:
        return False
    workspace = await Workspace.get(id=workspace_id)
    await stop_or_revert(backend, workspace)
    return True


async def stop_or_revert(backend: WorkspaceBackend, workspace: Workspace) -> None:
    """Calls ``backend.stop`` on a row already marked stopped; undoes the mark on failure."""
    try:
        await backend.stop(workspace)
    except BaseException:
        await Workspace.filter(id=workspace.id, status=WorkspaceStatus.STOPPED).update(
            status=WorkspaceStatus.RUNNING, stopped_at=None
        )
        raise
