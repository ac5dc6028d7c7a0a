"""Whole turns with the scripted model and the daemon's tools against the database:
plan mode's write limits, the turns that end at ``propose_plan`` and
``ask_user_question``, and what explore and other sub-agent chats may not do."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from daemon.chat_context import plan_file, plan_path
from daemon.providers import ModelRequest, StreamEvent
from daemon.providers.scripted import ScriptedClient
from daemon.tool_registry import ToolRegistry
from daemon.tools import ProcessTable, agent_tools
from daemon.turn_runner import Turn, TurnSettings, run_turn
from daemon.workspace_backend import LocalWorkspaceBackend, create_workspace
from db.chat_files import linked_files, owned_file
from db.model_resolution import default_model_config
from db.models import Chat, ChatMessage, User, WorkspaceTemplate
from db.vocabulary import ChatMode, ChatStatus, MessageRole, WorkspaceSourceKind
from events.announcer import ChatAnnouncer
from tests.daemon.live import messages_of, stored_text

FAST = TurnSettings(coalesce_s=0.02, retry_base_s=0.01, retry_max_s=0.02)
USER, ASSISTANT, TOOL = MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL
QUESTION = {
    "questions": [
        {
            "question": "Which storage should the cache use?",
            "options": [{"label": "Redis"}, {"label": "In memory"}],
        }
    ]
}


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"pm{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture(scope="module")
async def tools() -> AsyncIterator[ToolRegistry]:
    processes = ProcessTable()
    yield ToolRegistry(agent_tools(processes))
    await processes.close_all()


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> LocalWorkspaceBackend:
    return LocalWorkspaceBackend(tmp_path_factory.mktemp("workspaces"))


@pytest.fixture
async def workspace(owner: User, backend: LocalWorkspaceBackend) -> tuple[uuid.UUID, Path]:
    """A fresh workspace (an empty git repository): its id and directory."""
    row = await create_workspace(backend, owner_id=owner.id, name="w", template=None, ttl_s=None)
    return row.id, backend.root / row.directory


def tool(name: str, args: dict[str, Any]) -> str:
    return f"/tool {name} {json.dumps(args)}"


async def claimed_chat(
    owner: User,
    lines: list[str],
    *,
    workspace_id: uuid.UUID | None,
    plan_mode: bool = False,
    parent: Chat | None = None,
    mode: ChatMode | None = None,
    chat_id: uuid.UUID | None = None,
) -> Chat:
    """A chat as a worker holds it after claiming: RUNNING, with the user's message."""
    config = await default_model_config()
    assert config is not None
    chat_id, now = chat_id or uuid.uuid4(), datetime.now(UTC)
    chat = await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        parent_id=parent.id if parent is not None else None,
        root_id=parent.root_id if parent is not None else chat_id,
        workspace_id=workspace_id,
        mode=mode,
        plan_mode=plan_mode,
        title="Named by hand",
        status=ChatStatus.RUNNING,
        worker_id=uuid.uuid4(),
        started_at=now,
        heartbeat_at=now,
        model_config_id=config.id,
        updated_at=now,
    )
    text = "\n".join([*lines, uuid.uuid4().hex])  # distinct requests
    await ChatMessage.create(
        chat_id=chat_id,
        role=MessageRole.USER,
        parts=[{"type": "text", "text": text}],
        created_by_id=owner.id,
        model_config_id=config.id,
    )
    return chat


async def run(
    app: Starlette, chat: Chat, tools: ToolRegistry, backend: LocalWorkspaceBackend
) -> list[ChatMessage]:
    """Runs the chat's turn to its end; the chat's messages after it."""
    turn = Turn(
        chat_id=chat.id,
        owner_id=chat.owner_id,  # type: ignore[attr-defined]
        model_config_id=chat.model_config_id,
        worker_id=chat.worker_id,  # type: ignore[arg-type]
        events=ChatAnnouncer(app.state.event_hub),
        secrets=app.state.secrets,
        tools=tools,
        settings=FAST,
        started_at=chat.started_at,
        backend=backend,
    )
    assert await run_turn(turn) is True
    row = await Chat.get(id=chat.id)
    # REQUIRES_ACTION: the turn ended at a question for the user.
    settled = ChatStatus.REQUIRES_ACTION if turn.awaiting_user else ChatStatus.WAITING
    assert (row.status, row.worker_id, row.last_error) == (settled, None, None)
    return await messages_of(chat.id)


def roles(rows: list[ChatMessage]) -> list[MessageRole]:
    return [row.role for row in rows]


def results(rows: list[ChatMessage]) -> list[dict[str, Any]]:
    """Every tool result of the turn, in order."""
    found = [part for row in rows if row.role is TOOL for part in row.parts]
    assert all(part["type"] == "tool-result" for part in found)
    return found


def the_plan(chat: Chat, directory: Path) -> Path:
    return plan_file(directory, chat.id)


# -- plan mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["write_file", "edit_files"])
async def test_plan_mode_refuses_changes_outside_the_plan_file(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
    name: str,
) -> None:
    workspace_id, directory = workspace
    (directory / "app.py").write_text("print('old')\n")
    args: dict[str, Any] = (
        {"path": "app.py", "content": "print('new')\n"}
        if name == "write_file"
        else {"files": [{"path": "app.py", "edits": [{"search": "old", "replace": "new"}]}]}
    )
    chat = await claimed_chat(owner, [tool(name, args)], workspace_id=workspace_id, plan_mode=True)
    rows = await run(app, chat, tools, backend)

    # The refusal is a result the model reads; the turn goes on to its next step.
    assert roles(rows) == [USER, ASSISTANT, TOOL, ASSISTANT]
    [result] = results(rows)
    assert (result["toolName"], result["isError"]) == (name, True)
    plan = f"/workspace/.agentgql/plans/PLAN-{chat.id}.md"  # as the sandbox sees it
    assert f"plan mode allows writing only the plan file {plan};" in result["result"]["error"]
    assert "'app.py' was not changed" in result["result"]["error"]
    assert stored_text(rows[3].parts).startswith(f"Tool {name} failed: ")
    assert (directory / "app.py").read_text() == "print('old')\n"


def plan_edits(chat_id: uuid.UUID, directory: Path) -> list[str]:
    """Write the chat's plan file by its absolute path, then edit it by a relative one."""
    relative = f".agentgql/plans/PLAN-{chat_id}.md"
    edit = {"path": relative, "edits": [{"search": "Draft", "replace": "Ship"}]}
    return [
        tool("write_file", {"path": plan_path(chat_id), "content": "# Plan\n\n1. Draft\n"}),
        tool("edit_files", {"files": [edit]}),
    ]


async def test_plan_mode_writes_and_edits_the_chat_s_own_plan_file(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, directory = workspace
    chat_id = uuid.uuid4()
    chat = await claimed_chat(
        owner,
        plan_edits(chat_id, directory),
        workspace_id=workspace_id,
        plan_mode=True,
        chat_id=chat_id,
    )
    rows = await run(app, chat, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, TOOL, ASSISTANT]
    assert [(r["toolName"], r["isError"]) for r in results(rows)] == [
        ("write_file", False),
        ("edit_files", False),
    ]
    assert the_plan(chat, directory).read_text() == "# Plan\n\n1. Ship\n"


async def test_another_chat_s_plan_file_is_not_this_chat_s(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, directory = workspace
    someone_else = uuid.uuid4()
    lines = plan_edits(someone_else, directory)
    chat = await claimed_chat(owner, lines, workspace_id=workspace_id, plan_mode=True)
    rows = await run(app, chat, tools, backend)
    assert [r["isError"] for r in results(rows)] == [True, True]
    assert not (directory / ".agentgql" / "plans" / f"PLAN-{someone_else}.md").exists()


async def test_a_plan_mode_turn_ends_at_propose_plan_and_links_the_plan(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, directory = workspace
    chat_id = uuid.uuid4()
    plan = plan_path(chat_id)
    content = "# Plan\n\n1. Add the cache.\n2. Test it.\n"
    lines = [
        tool("write_file", {"path": plan, "content": content}),
        tool("propose_plan", {"path": plan}),
    ]
    chat = await claimed_chat(
        owner, lines, workspace_id=workspace_id, plan_mode=True, chat_id=chat_id
    )
    rows = await run(app, chat, tools, backend)

    # One model step with both calls, their results, and no step after them.
    assert roles(rows) == [USER, ASSISTANT, TOOL, TOOL]
    assert [p["toolName"] for p in rows[1].parts if p["type"] == "tool-call"] == [
        "write_file",
        "propose_plan",
    ]
    written, proposed = results(rows)
    assert (written["isError"], proposed["isError"]) == (False, False)
    assert proposed["result"]["kind"] == "plan"
    assert proposed["result"]["mediaType"] == "text/markdown"

    [meta] = (await linked_files([chat.id]))[chat.id]
    assert str(meta.id) == proposed["result"]["fileId"]
    assert (meta.name, meta.mime_type) == (f"PLAN-{chat.id}.md", "text/markdown")
    stored = await owned_file(owner.id, meta.id)
    assert stored is not None
    assert stored.data == the_plan(chat, directory).read_bytes() == content.encode()


async def test_propose_plan_outside_plan_mode_does_not_end_the_turn(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, directory = workspace
    (directory / "PLAN.md").write_text(f"# Plan {uuid.uuid4().hex}\n")
    lines = [tool("propose_plan", {"path": str(directory / "PLAN.md")})]
    chat = await claimed_chat(owner, lines, workspace_id=workspace_id)
    rows = await run(app, chat, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, ASSISTANT]
    assert results(rows)[0]["isError"] is False
    assert len((await linked_files([chat.id]))[chat.id]) == 1


async def test_a_failed_propose_plan_lets_the_model_go_on(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, _ = workspace
    chat_id = uuid.uuid4()
    lines = [tool("propose_plan", {"path": plan_path(chat_id)})]  # never written
    chat = await claimed_chat(
        owner, lines, workspace_id=workspace_id, plan_mode=True, chat_id=chat_id
    )
    rows = await run(app, chat, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, ASSISTANT]
    assert "does not exist" in results(rows)[0]["result"]["error"]
    assert chat.id not in await linked_files([chat.id])


# -- questions --------------------------------------------------------------------------


@pytest.mark.parametrize("plan_mode", [False, True], ids=["chat", "plan-mode"])
async def test_ask_user_question_ends_the_turn(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    plan_mode: bool,
) -> None:
    chat = await claimed_chat(
        owner, [tool("ask_user_question", QUESTION)], workspace_id=None, plan_mode=plan_mode
    )
    rows = await run(app, chat, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL]
    assert (await Chat.get(id=chat.id)).status is ChatStatus.REQUIRES_ACTION
    [result] = results(rows)
    assert result["isError"] is False
    assert [o["label"] for o in result["result"]["questions"][0]["options"]] == [
        "Redis",
        "In memory",
    ]


@pytest.mark.parametrize("count", [1, 5])
async def test_a_question_with_the_wrong_number_of_options_is_refused(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    count: int,
) -> None:
    args = {
        "questions": [{"question": "Which?", "options": [{"label": str(n)} for n in range(count)]}]
    }
    chat = await claimed_chat(owner, [tool("ask_user_question", args)], workspace_id=None)
    rows = await run(app, chat, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, ASSISTANT]  # the model gets to fix it
    [result] = results(rows)
    assert result["isError"] is True
    assert result["result"]["error"] == (
        "invalid arguments, nothing was done: "
        f"argument 'questions[0].options' must hold 2 to 4 items, not {count}"
    )


# -- sub-agents -------------------------------------------------------------------------


async def test_an_explore_chat_cannot_write(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, directory = workspace
    (directory / "README.md").write_text("read me\n")
    root = await claimed_chat(owner, [], workspace_id=workspace_id)
    edit = {"path": "README.md", "edits": [{"search": "read", "replace": "write"}]}
    lines = [
        tool("write_file", {"path": "new.txt", "content": "x"}),
        tool("edit_files", {"files": [edit]}),
        tool("read_file", {"path": "README.md"}),
    ]
    child = await claimed_chat(
        owner, lines, workspace_id=workspace_id, parent=root, mode=ChatMode.EXPLORE
    )
    rows = await run(app, child, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, TOOL, TOOL, ASSISTANT]
    write, edit_result, read = results(rows)
    for refused, name in ((write, "write_file"), (edit_result, "edit_files")):
        assert refused["isError"] is True
        assert refused["result"] == {
            "error": f"{name} is not available to an explore sub-agent: it is read-only"
        }
    assert read["isError"] is False  # reading is what explore chats are for
    assert not (directory / "new.txt").exists()
    assert (directory / "README.md").read_text() == "read me\n"


async def test_an_explore_chat_cannot_spawn(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, _ = workspace
    root = await claimed_chat(owner, [], workspace_id=workspace_id)
    lines = [
        tool("spawn_agent", {"prompt": "Fix it"}),
        tool("spawn_explore_agent", {"prompt": "Look deeper"}),
    ]
    child = await claimed_chat(
        owner, lines, workspace_id=workspace_id, parent=root, mode=ChatMode.EXPLORE
    )
    rows = await run(app, child, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, TOOL, ASSISTANT]
    assert [(r["isError"], "explore sub-agent" in r["result"]["error"]) for r in results(rows)] == [
        (True, True),
        (True, True),
    ]
    assert not await Chat.filter(parent_id=child.id).exists()


async def test_a_sub_agent_cannot_use_root_only_tools(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, _ = workspace
    root = await claimed_chat(owner, [], workspace_id=workspace_id)
    lines = [
        tool("spawn_agent", {"prompt": "Recurse"}),
        tool("create_workspace", {"template": "anything"}),
        tool("ask_user_question", QUESTION),
    ]
    child = await claimed_chat(owner, lines, workspace_id=workspace_id, parent=root)
    rows = await run(app, child, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, TOOL, TOOL, ASSISTANT]
    assert [r["result"]["error"] for r in results(rows)] == [
        f"{name} is only available in the root chat, not to sub-agents"
        for name in ("spawn_agent", "create_workspace", "ask_user_question")
    ]
    assert not await Chat.filter(parent_id=child.id).exists()


async def test_plan_mode_starts_explore_agents_but_not_general_ones(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    workspace: tuple[uuid.UUID, Path],
) -> None:
    workspace_id, _ = workspace
    lines = [
        tool("spawn_agent", {"prompt": "Implement it"}),
        tool("spawn_explore_agent", {"prompt": "Find the cache code"}),
    ]
    chat = await claimed_chat(owner, lines, workspace_id=workspace_id, plan_mode=True)
    rows = await run(app, chat, tools, backend)
    assert roles(rows) == [USER, ASSISTANT, TOOL, TOOL, ASSISTANT]
    general, explore = results(rows)
    assert general["isError"] is True
    assert "spawn_agent is not available in plan mode" in general["result"]["error"]
    assert explore["isError"] is False
    [child] = await Chat.filter(parent_id=chat.id)
    assert str(child.id) == explore["result"]["chatId"]
    assert (child.mode, child.plan_mode, child.status) == (
        ChatMode.EXPLORE,
        False,
        ChatStatus.PENDING,
    )
    assert (child.root_id, child.workspace_id) == (chat.id, workspace_id)
    [task] = await messages_of(child.id)
    assert (task.role, stored_text(task.parts)) == (USER, "Find the cache code")


async def test_a_workspace_created_in_plan_mode_names_its_plan_file_to_the_model(
    app: Starlette,
    owner: User,
    tools: ToolRegistry,
    backend: LocalWorkspaceBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "template").mkdir()
    (tmp_path / "template" / "README.md").write_text("hello\n")
    template = await WorkspaceTemplate.create(
        name=f"tpl-{uuid.uuid4().hex[:8]}",
        source=str(tmp_path / "template"),
        source_kind=WorkspaceSourceKind.DIRECTORY,
    )
    systems: list[str | None] = []
    stream = ScriptedClient.stream

    def recording(self: ScriptedClient, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        systems.append(request.system)
        return stream(self, request)

    monkeypatch.setattr(ScriptedClient, "stream", recording)
    lines = [tool("create_workspace", {"template": template.name})]
    chat = await claimed_chat(owner, lines, workspace_id=None, plan_mode=True)
    rows = await run(app, chat, tools, backend)

    assert roles(rows) == [USER, ASSISTANT, TOOL, ASSISTANT]
    created = results(rows)[0]["result"]
    assert (await Chat.get(id=chat.id)).workspace_id == uuid.UUID(created["workspaceId"])
    before, after = systems
    assert before is not None
    assert "(create a workspace first)" in before
    assert after is not None
    assert plan_path(chat.id) in after
    assert str(backend.root) not in after  # the model is told no host path
