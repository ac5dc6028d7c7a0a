"""What a turn reads about its chat before the first step (kind, mode, workspace,
plan file), and the system prompt that follows from it."""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette

from daemon import prompt
from daemon.chat_context import load_chat_context
from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import ToolRegistry
from daemon.turn_runner import Turn
from daemon.workspace_backend import LocalWorkspaceBackend, create_workspace, stop_workspace
from db.chat_config import PLAN_MODE_INSTRUCTIONS_KEY, delete_raw, write_raw
from db.models import Chat, User, Workspace
from db.system_prompt import DEFAULT_SYSTEM_PROMPT
from db.vocabulary import WORKSPACE_MOUNT, ChatMode, WorkspaceStatus


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"ctx{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture
def backend(tmp_path: Path) -> LocalWorkspaceBackend:
    return LocalWorkspaceBackend(tmp_path / "workspaces")


async def new_chat(
    owner: User,
    *,
    parent: Chat | None = None,
    workspace_id: uuid.UUID | None = None,
    mode: ChatMode | None = None,
    plan_mode: bool = False,
) -> Chat:
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        parent_id=parent.id if parent is not None else None,
        root_id=parent.root_id if parent is not None else chat_id,
        workspace_id=workspace_id,
        mode=mode,
        plan_mode=plan_mode,
        title="t",
        updated_at=datetime.now(UTC),
    )


def turn_for(app: Starlette, chat: Chat, backend: LocalWorkspaceBackend | None) -> Turn:
    return Turn(
        chat_id=chat.id,
        owner_id=chat.owner_id,  # type: ignore[attr-defined]
        model_config_id=None,
        worker_id=uuid.uuid4(),
        events=None,
        secrets=app.state.secrets,
        tools=ToolRegistry(),
        backend=backend,
    )


def write_plan(directory: Path, plan_path: str | None) -> None:
    """Write the plan the model names (an in-sandbox path) where it lies on the host."""
    assert plan_path is not None
    assert plan_path.startswith(WORKSPACE_MOUNT + "/")
    plan = directory / plan_path.removeprefix(WORKSPACE_MOUNT + "/")
    plan.parent.mkdir(parents=True)
    plan.write_text("# Plan\n")


def git_status(path: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


async def test_a_root_chat_without_a_workspace(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    chat = await new_chat(owner)
    turn = turn_for(app, chat, backend)
    await load_chat_context(turn)
    assert turn.policy == ToolPolicy(is_root=True, explore=False, plan_mode=False)
    assert (turn.parent_id, turn.root_id) == (None, chat.id)
    assert (turn.workspace_id, turn.workspace_dir, turn.plan_path) == (None, None, None)
    assert turn.plan_mode is False


async def test_an_explore_child_is_a_read_only_sub_agent(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    root = await new_chat(owner, plan_mode=True)
    child = await new_chat(owner, parent=root, mode=ChatMode.EXPLORE)
    turn = turn_for(app, child, backend)
    await load_chat_context(turn)
    assert turn.policy == ToolPolicy(is_root=False, explore=True, plan_mode=False)
    assert (turn.parent_id, turn.root_id) == (root.id, root.id)


async def test_a_stopped_workspace_is_started_again_and_gets_a_plan_path(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="w", template=None, ttl_s=600
    )
    assert await stop_workspace(backend, workspace.id)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    await Workspace.filter(id=workspace.id).update(last_active_at=long_ago)
    chat = await new_chat(owner, workspace_id=workspace.id, plan_mode=True)

    turn = turn_for(app, chat, backend)
    await load_chat_context(turn)

    row = await Workspace.get(id=workspace.id)
    assert row.status is WorkspaceStatus.RUNNING
    assert row.stopped_at is None
    assert row.last_active_at > long_ago + timedelta(hours=2)  # the TTL counts from now
    directory = backend.root / str(workspace.id)
    assert turn.workspace_id == workspace.id
    assert turn.workspace_dir == directory
    assert turn.policy == ToolPolicy(is_root=True, explore=False, plan_mode=True)
    assert turn.plan_path == f"/workspace/.agentgql/plans/PLAN-{chat.id}.md"  # no host path

    # The plan lives in the workspace but never shows up in the repository's diff.
    write_plan(directory, turn.plan_path)
    (directory / "real.txt").write_text("a change\n")
    assert git_status(directory) == "?? real.txt\n"


async def test_the_plan_exclude_is_written_once(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="w", template=None, ttl_s=None
    )
    chat = await new_chat(owner, workspace_id=workspace.id)
    for _ in range(2):
        await load_chat_context(turn_for(app, chat, backend))
    exclude = (backend.root / str(workspace.id) / ".git" / "info" / "exclude").read_text()
    assert exclude.splitlines().count("/.agentgql/") == 1
    assert exclude.endswith("/.agentgql/\n")


async def test_an_unusable_workspace_leaves_the_turn_without_one(
    app: Starlette,
    owner: User,
    backend: LocalWorkspaceBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="w", template=None, ttl_s=None
    )
    await stop_workspace(backend, workspace.id)
    await backend.destroy(workspace)  # its directory is gone: starting it fails
    chat = await new_chat(owner, workspace_id=workspace.id)
    turn = turn_for(app, chat, backend)
    with caplog.at_level(logging.WARNING, logger="daemon.chat_context"):
        await load_chat_context(turn)
    assert (turn.workspace_id, turn.workspace_dir, turn.plan_path) == (workspace.id, None, None)
    assert f"workspace {workspace.id} is unusable" in caplog.text


async def test_without_a_backend_there_is_no_workspace_directory(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="w", template=None, ttl_s=None
    )
    chat = await new_chat(owner, workspace_id=workspace.id)
    turn = turn_for(app, chat, None)
    await load_chat_context(turn)
    assert (turn.workspace_dir, turn.plan_path) == (None, None)


# -- the system prompt -------------------------------------------------------------------


async def test_a_plain_root_chat_has_no_overlay(owner: User) -> None:
    chat = await new_chat(owner)
    policy = ToolPolicy(is_root=True, explore=False, plan_mode=False)
    text = await prompt.system_text(chat.id, owner.id, policy, None)
    assert text == DEFAULT_SYSTEM_PROMPT
    assert await prompt.system_text(chat.id, owner.id) == DEFAULT_SYSTEM_PROMPT


async def test_plan_mode_adds_the_overlay_with_the_plan_file_and_the_admin_text(
    owner: User,
) -> None:
    chat = await new_chat(owner, plan_mode=True)
    policy = ToolPolicy(is_root=True, explore=False, plan_mode=True)
    plan = f"/ws/.agentgql/plans/PLAN-{chat.id}.md"
    admin_text = f"Always list the risks first ({uuid.uuid4().hex[:6]})."
    await write_raw(PLAN_MODE_INSTRUCTIONS_KEY, f"  {admin_text}\n")
    try:
        text = await prompt.system_text(chat.id, owner.id, policy, plan)
    finally:
        await delete_raw(PLAN_MODE_INSTRUCTIONS_KEY)
    pieces = text.split("\n\n")
    assert pieces[0] == DEFAULT_SYSTEM_PROMPT
    assert pieces[-2] == prompt.PLANNING.format(plan=plan)
    assert pieces[-1] == admin_text
    assert prompt.SUB_AGENT not in text

    # Without admin text the overlay ends the prompt; without a workspace it says so.
    text = await prompt.system_text(chat.id, owner.id, policy, None)
    assert text.endswith(prompt.PLANNING.format(plan="(create a workspace first)"))
    assert admin_text not in text


async def test_an_explore_child_gets_the_sub_agent_note_and_the_explore_overlay(
    owner: User,
) -> None:
    root = await new_chat(owner)
    child = await new_chat(owner, parent=root, mode=ChatMode.EXPLORE)
    await write_raw(PLAN_MODE_INSTRUCTIONS_KEY, "never shown to explore chats")
    try:
        text = await prompt.system_text(
            child.id, owner.id, ToolPolicy(is_root=False, explore=True, plan_mode=False), None
        )
    finally:
        await delete_raw(PLAN_MODE_INSTRUCTIONS_KEY)
    assert text == "\n\n".join([DEFAULT_SYSTEM_PROMPT, prompt.SUB_AGENT, prompt.EXPLORE])


async def test_a_general_sub_agent_gets_only_the_sub_agent_note(owner: User) -> None:
    root = await new_chat(owner)
    child = await new_chat(owner, parent=root)
    policy = ToolPolicy(is_root=False, explore=False, plan_mode=False)
    text = await prompt.system_text(child.id, owner.id, policy, None)
    assert text == "\n\n".join([DEFAULT_SYSTEM_PROMPT, prompt.SUB_AGENT])


async def test_the_plan_exclude_is_written_when_git_has_no_info_directory(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    # A repository made without git's templates has no .git/info directory.
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="w", template=None, ttl_s=None
    )
    directory = backend.root / str(workspace.id)
    shutil.rmtree(directory / ".git" / "info")
    chat = await new_chat(owner, workspace_id=workspace.id, plan_mode=True)
    turn = turn_for(app, chat, backend)
    await load_chat_context(turn)
    write_plan(directory, turn.plan_path)
    assert git_status(directory) == ""


async def test_a_workspace_that_is_no_repository_gets_no_git_files(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend
) -> None:
    workspace = await create_workspace(
        backend, owner_id=owner.id, name="w", template=None, ttl_s=None
    )
    directory = backend.root / str(workspace.id)
    shutil.rmtree(directory / ".git")
    chat = await new_chat(owner, workspace_id=workspace.id)
    await load_chat_context(turn_for(app, chat, backend))
    assert list(directory.iterdir()) == []
