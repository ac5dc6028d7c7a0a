"""A turn for the workspace-tool tests, and checks on whether a process is gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from daemon.workspace_backend import WorkspaceBackend
from events.announcer import ChatAnnouncer


@dataclass
class FakeTurn:
    """Implements ``ToolTurn`` (and ``AgentTurn``, for the chat-level tools) with
    plain attributes the tests can set."""

    workspace_dir: Path | None
    chat_id: uuid.UUID = field(default_factory=uuid.uuid4)
    owner_id: uuid.UUID = field(default_factory=uuid.uuid4)
    plan_mode: bool = False
    plan_path: str | None = None
    model_config_id: uuid.UUID | None = None
    root_id: uuid.UUID | None = None
    workspace_id: uuid.UUID | None = None
    events: ChatAnnouncer | None = None
    backend: WorkspaceBackend | None = None


def is_running(pid: int) -> bool:
    """False once ``pid`` has exited, even while it is still an unreaped zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


async def exits(pid: int, within_s: float = 5.0) -> bool:
    """Whether ``pid`` exits within ``within_s``, woken by its pidfd, not by polling.

    A killed process closes its files before it turns into a zombie, so "its output
    pipe closed" does not yet mean "it is gone"; this waits for the latter.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                await gone
        return not is_running(pid)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
