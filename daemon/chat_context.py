"""What a turn knows about its chat before the first step: kind, mode, workspace.

Read once when the turn starts. A stopped workspace is started again (a chat
coming back to it is activity), and its idle clock is reset, so the TTL
counts from the last turn that used it.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from daemon.tool_policy import ToolPolicy
from daemon.workspace_backend import (
    WorkspaceBackend,
    WorkspaceError,
    start_workspace,
    touch_workspace,
)
from db.models import Chat, Workspace
from db.vocabulary import WORKSPACE_MOUNT, ChatMode, WorkspaceStatus

log = logging.getLogger(__name__)

# Plans live inside the workspace (tools are confined to it) but outside every
# repository's diff: the directory is added to the root repository's excludes.
PLAN_DIR = ".agentgql/plans"


def plan_file(workspace_dir: Path, chat_id: uuid.UUID) -> Path:
    """Where the chat's plan lies on the host (the daemon's own file access)."""
    return workspace_dir / PLAN_DIR / f"PLAN-{chat_id}.md"


def plan_path(chat_id: uuid.UUID) -> str:
    """The plan file as the model and its sandboxed commands name it: no host path."""
    return f"{WORKSPACE_MOUNT}/{PLAN_DIR}/PLAN-{chat_id}.md"


def _exclude_plans(workspace_dir: Path) -> None:
    git_dir = workspace_dir / ".git"
    if not git_dir.is_dir():
        return
    info = git_dir / "info"
    info.mkdir(exist_ok=True)  # absent when the repository was made without templates
    exclude = info / "exclude"
    line = f"/{PLAN_DIR.split('/')[0]}/"
    current = exclude.read_text() if exclude.exists() else ""
    if line not in current.splitlines():
        exclude.write_text(
            current + ("" if current.endswith("\n") or not current else "\n") + line + "\n"
        )


async def workspace_dir(
    backend: WorkspaceBackend | None, workspace_id: uuid.UUID | None
) -> Path | None:
    """The workspace's directory, started if it was stopped; None without one."""
    if backend is None or workspace_id is None:
        return None
    workspace = await Workspace.get_or_none(id=workspace_id)
    if workspace is None:
        return None
    try:
        if workspace.status is WorkspaceStatus.STOPPED:
            path = await start_workspace(backend, workspace_id)
        else:
            path = backend.path(workspace)
        await touch_workspace(workspace_id)
    except WorkspaceError:
        log.warning("workspace %s is unusable", workspace_id, exc_info=True)
        return None
    _exclude_plans(path)
    return path


async def load_chat_context(turn: Any) -> None:
    """Fill the turn's chat fields (see ``Turn``) from the chat and its workspace."""
    chat = await Chat.get(id=turn.chat_id)
    turn.parent_id = chat.parent_id  # type: ignore[attr-defined]
    turn.root_id = chat.root_id
    turn.workspace_id = chat.workspace_id
    turn.policy = ToolPolicy(
        is_root=chat.parent_id is None,  # type: ignore[attr-defined]
        explore=chat.mode is ChatMode.EXPLORE,
        plan_mode=chat.plan_mode,
    )
    turn.workspace_dir = await workspace_dir(turn.backend, chat.workspace_id)
    turn.plan_path = plan_path(chat.id) if turn.workspace_dir is not None else None
