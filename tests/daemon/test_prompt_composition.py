"""The system prompt a turn sends, read whole: deployment prompt, the chat's own
text, context files, personal instructions, mode overlay — in that order, each
present exactly when it should be; and a workspace's AGENTS.md costs input tokens."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette

from daemon import prompt
from daemon.context_files import read_from
from daemon.tool_policy import ToolPolicy
from daemon.tool_registry import ToolRegistry
from daemon.turn_runner import Turn, TurnSettings, run_turn
from daemon.workspace_backend import LocalWorkspaceBackend, create_workspace
from db import system_prompt
from db.chat_config import PLAN_MODE_INSTRUCTIONS_KEY, delete_raw, write_raw
from db.model_resolution import default_model_config
from db.models import Chat, ChatMessage, SiteConfig, User, UserConfig
from db.system_prompt import DEFAULT_SYSTEM_PROMPT, SystemPromptConfig
from db.vocabulary import ChatStatus, MessageRole
from events.announcer import ChatAnnouncer

CUSTOM = "Deployment rule: answer in English."
PERSONAL = "Call me Sam."
AGENTS = "Run make check before you commit."
PLAN_FILE = "/workspace/.agentgql/plans/PLAN-x.md"
CONTEXT_SECTION = "\n".join(
    [
        "<workspace-context-files>",
        "Instructions from files in the workspace, for working in the directory each file lies in:",
        '<context-file path="/workspace/AGENTS.md">',
        AGENTS,
        "</context-file>",
        "</workspace-context-files>",
    ]
)
PERSONAL_BLOCK = f"<user-instructions>\n{PERSONAL}\n</user-instructions>"
ROOT = ToolPolicy(is_root=True, explore=False, plan_mode=False)
PLANNING = ToolPolicy(is_root=True, explore=False, plan_mode=True)


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"pc{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture(autouse=True)
async def nothing_configured(owner: User) -> AsyncIterator[None]:
    keys = [system_prompt.CUSTOM_KEY, system_prompt.INCLUDE_DEFAULT_KEY]
    await SiteConfig.filter(key__in=[*keys, PLAN_MODE_INSTRUCTIONS_KEY]).delete()
    await UserConfig.filter(key=system_prompt.USER_PROMPT_KEY).delete()
    yield
    await SiteConfig.filter(key__in=[*keys, PLAN_MODE_INSTRUCTIONS_KEY]).delete()
    await UserConfig.filter(key=system_prompt.USER_PROMPT_KEY).delete()


async def new_chat(owner: User, *, parent: Chat | None = None, system: str | None = None) -> Chat:
    chat_id = uuid.uuid4()
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        parent_id=parent.id if parent is not None else None,
        root_id=parent.root_id if parent is not None else chat_id,
        title="t",
        updated_at=datetime.now(UTC),
    )
    if system is not None:  # what createChat's systemPrompt writes
        await ChatMessage.create(
            chat_id=chat_id, role=MessageRole.SYSTEM, parts=[{"type": "text", "text": system}]
        )
    return chat


MATRIX = list(itertools.product([True, False], repeat=5))
NAMES = ("default", "custom", "personal", "agents", "plan")


@pytest.mark.parametrize(
    ("include_default", "custom", "personal", "context_file", "plan_mode"),
    MATRIX,
    ids=["-".join(n for n, on in zip(NAMES, m, strict=True) if on) or "none" for m in MATRIX],
)
async def test_the_prompt_composition_matrix(
    owner: User,
    tmp_path: Path,
    include_default: bool,
    custom: bool,
    personal: bool,
    context_file: bool,
    plan_mode: bool,
) -> None:
    await system_prompt.write_config(SystemPromptConfig(CUSTOM if custom else "", include_default))
    if personal:
        await system_prompt.set_personal_instructions(owner.id, PERSONAL)
    if context_file:
        (tmp_path / "AGENTS.md").write_text(AGENTS + "\n")
    chat = await new_chat(owner)

    built = await prompt.system_prompt(
        chat.id, owner.id, PLANNING if plan_mode else ROOT, PLAN_FILE, workspace_dir=tmp_path
    )

    expected = [
        *([DEFAULT_SYSTEM_PROMPT] if include_default else []),
        *([CUSTOM] if custom else []),
        *([CONTEXT_SECTION] if context_file else []),
        *([PERSONAL_BLOCK] if personal else []),
        *([prompt.PLANNING.format(plan=PLAN_FILE)] if plan_mode else []),
    ]
    assert built.text == "\n\n".join(expected)
    assert [f.path for f in built.context_files.files] == (
        ["/workspace/AGENTS.md"] if context_file else []
    )


async def test_every_piece_in_its_place(owner: User, tmp_path: Path) -> None:
    """A delegated chat with its own system text, in plan mode with admin
    instructions: the chat's text and the sub-agent note follow the deployment
    prompt; the admin's plan-mode text closes the overlay."""
    await system_prompt.write_config(SystemPromptConfig(CUSTOM, True))
    await system_prompt.set_personal_instructions(owner.id, PERSONAL)
    await write_raw(PLAN_MODE_INSTRUCTIONS_KEY, "List the risks first.")
    (tmp_path / "AGENTS.md").write_text(AGENTS)
    root = await new_chat(owner)
    child = await new_chat(owner, parent=root, system="You review the database layer.")
    policy = ToolPolicy(is_root=False, explore=False, plan_mode=True)

    text = await prompt.system_text(child.id, owner.id, policy, PLAN_FILE, workspace_dir=tmp_path)

    assert text.split("\n\n") == [
        DEFAULT_SYSTEM_PROMPT,
        CUSTOM,
        "You review the database layer.",
        prompt.SUB_AGENT,
        CONTEXT_SECTION,
        PERSONAL_BLOCK,
        prompt.PLANNING.format(plan=PLAN_FILE),
        "List the risks first.",
    ]
    await delete_raw(PLAN_MODE_INSTRUCTIONS_KEY)


async def test_explore_children_get_the_explore_overlay_last(owner: User, tmp_path: Path) -> None:
    await system_prompt.set_personal_instructions(owner.id, PERSONAL)
    (tmp_path / "AGENTS.md").write_text(AGENTS)
    root = await new_chat(owner)
    child = await new_chat(owner, parent=root)
    policy = ToolPolicy(is_root=False, explore=True, plan_mode=True)  # explore wins
    text = await prompt.system_text(child.id, owner.id, policy, None, workspace_dir=tmp_path)
    assert text.split("\n\n") == [
        DEFAULT_SYSTEM_PROMPT,
        prompt.SUB_AGENT,
        CONTEXT_SECTION,
        PERSONAL_BLOCK,
        prompt.EXPLORE,
    ]


# -- a whole turn ---------------------------------------------------------------------------


async def run_scripted_turn(
    app: Starlette, owner: User, backend: LocalWorkspaceBackend, workspace_id: uuid.UUID
) -> int:
    """One turn of the SCRIPTED model (input tokens = words of the prompt); its input tokens."""
    config = await default_model_config()
    assert config is not None
    chat_id, now = uuid.uuid4(), datetime.now(UTC)
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        workspace_id=workspace_id,
        title="t",
        status=ChatStatus.RUNNING,
        worker_id=uuid.uuid4(),
        started_at=now,
        heartbeat_at=now,
        model_config_id=config.id,
        updated_at=now,
    )
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": f"hello {uuid.uuid4().hex}"}],
        created_by_id=owner.id,
    )
    turn = Turn(
        chat_id=chat.id,
        owner_id=owner.id,
        model_config_id=config.id,
        worker_id=chat.worker_id,  # type: ignore[arg-type]
        events=ChatAnnouncer(app.state.event_hub),
        secrets=app.state.secrets,
        tools=ToolRegistry(),
        settings=TurnSettings(coalesce_s=0.02, retry_base_s=0.01, retry_max_s=0.02),
        started_at=chat.started_at,
        backend=backend,
    )
    assert await run_turn(turn) is True
    reply = await ChatMessage.get(chat_id=chat_id, role=MessageRole.ASSISTANT)
    assert reply.input_tokens is not None
    return int(reply.input_tokens)


async def test_a_50_word_agents_md_raises_a_turn_s_input_tokens(
    app: Starlette, owner: User, tmp_path: Path
) -> None:
    backend = LocalWorkspaceBackend(tmp_path / "workspaces")
    row = await create_workspace(backend, owner_id=owner.id, name="w", template=None, ttl_s=None)
    directory = backend.root / row.directory

    without = await run_scripted_turn(app, owner, backend, row.id)
    (directory / "AGENTS.md").write_text(" ".join(f"word{i}" for i in range(50)) + "\n")
    with_file = await run_scripted_turn(app, owner, backend, row.id)

    section = read_from(directory, []).text
    assert with_file - without == len(section.split())  # the 50 words and their delimiters
    assert with_file - without >= 50
