"""A running turn: what it needs, who it is (worker and claim time), and how it
announces what it wrote.

Shared by the runner (``daemon.turn_runner``), the endings that settle a chat
when a run stops (``daemon.turn_endings``) and the tools, which read the turn.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from daemon.providers.base import CONNECT_TIMEOUT_S
from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import ToolRegistry
from daemon.workspace_backend import WorkspaceBackend
from db.models import Chat
from db.secret_box import SecretBox
from events.announcer import ChatAnnouncer
from events.live_parts import run_tag

log = logging.getLogger(__name__)


@dataclass
class TurnSettings:
    coalesce_s: float = 0.05
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    retry_attempts: int = 25
    max_steps: int = 100
    # Reaching a provider fails (and is retried, announced) after this long.
    connect_timeout_s: float = CONNECT_TIMEOUT_S


@dataclass
class Turn:
    """What a running turn needs; ``stop_reason`` is set by whoever cancels it."""

    chat_id: uuid.UUID
    owner_id: uuid.UUID
    model_config_id: uuid.UUID | None
    worker_id: uuid.UUID
    events: ChatAnnouncer | None
    secrets: SecretBox
    tools: ToolRegistry
    settings: TurnSettings = field(default_factory=TurnSettings)
    # The claim's start time: with the worker id, it names this run (the same worker
    # may claim the chat again while an interrupted run of it is still unwinding).
    started_at: datetime | None = None
    stop_reason: str | None = None  # "interrupted" keeps partial output; "lost" does not
    finished: bool = False  # settled: the chat is released, nothing may cancel the task
    backend: WorkspaceBackend | None = None
    # Read from the chat when the turn starts (``chat_context``); tools may update
    # the workspace (create_workspace binds one mid-turn).
    policy: ToolPolicy = field(default_factory=lambda: ToolPolicy(True, False, False))
    parent_id: uuid.UUID | None = None
    root_id: uuid.UUID | None = None
    workspace_id: uuid.UUID | None = None
    workspace_dir: Path | None = None
    plan_path: str | None = None
    # The turn ended at ask_user_question: the chat waits for the user's answer.
    awaiting_user: bool = False

    @property
    def plan_mode(self) -> bool:
        return self.policy.plan_mode


def run_of(turn: Turn) -> str:
    """This run's name in the live-part store (worker id and claim time)."""
    return run_tag(turn.worker_id, turn.started_at)


def owns(turn: Turn, chat: Chat) -> bool:
    """Whether ``chat`` is still held by this very run."""
    return chat.worker_id == turn.worker_id and (
        turn.started_at is None or chat.started_at == turn.started_at
    )


async def publish(
    turn: Turn, what: str, announce: Callable[[ChatAnnouncer], Awaitable[None]]
) -> None:
    """Announce through the turn's announcer; a failure is logged (as ``what``),
    never the turn's: the write it announces is committed."""
    if turn.events is None:
        return
    try:
        await announce(turn.events)
    except Exception:
        log.warning("publishing %s failed", what, exc_info=True)
