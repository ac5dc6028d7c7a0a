"""What a workspace tool reads from its call: the turn it runs in and its arguments.

Tools depend on this protocol rather than on the daemon's turn class, so they stay
testable with a plain dataclass. Argument types shared by several tools live here
too, so a path is bounded and described the same way everywhere.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import Field

from daemon.workspace_backend import WorkspaceBackend
from events.announcer import ChatAnnouncer


class ToolTurn(Protocol):
    """The parts of a running turn that workspace tools use."""

    @property
    def chat_id(self) -> uuid.UUID: ...

    @property
    def owner_id(self) -> uuid.UUID: ...

    @property
    def workspace_dir(self) -> Path | None: ...

    @property
    def plan_mode(self) -> bool: ...

    @property
    def plan_path(self) -> str | None:
        """The chat's own plan file: an absolute path inside the workspace."""
        ...


# Linux's PATH_MAX: no longer path can be opened anyway.
PATH_MAX = 4096

WorkspacePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=PATH_MAX,
        description="File path, relative to the workspace root or absolute.",
    ),
]


class AgentTurn(ToolTurn, Protocol):
    """What the chat-level tools (workspaces, plans, sub-agents) also use.

    ``workspace_id``, ``workspace_dir`` and ``plan_path`` are assignable:
    create_workspace binds a workspace in the middle of a turn.
    """

    model_config_id: uuid.UUID | None
    root_id: uuid.UUID | None
    workspace_id: uuid.UUID | None
    workspace_dir: Path | None
    plan_path: str | None
    events: ChatAnnouncer | None
    backend: WorkspaceBackend | None
