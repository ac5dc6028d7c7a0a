"""``propose_plan``: the plan file becomes a Markdown chat file linked to the chat."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette

from daemon.tool_registry import ToolError
from daemon.tools.propose_plan import PLAN_MAX_BYTES, TOOL
from db.chat_files import linked_files, owned_file
from db.models import Chat, ChatFileLink, User
from tests.daemon.tools.workspace_turn import FakeTurn

propose_plan = TOOL.run

PLAN = "# Plan\n\n1. Read the parser.\n2. Fix the off-by-one.\n"


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"pp{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture
async def planning(owner: User, workspace: Path) -> FakeTurn:
    """A plan-mode turn of a fresh chat, its plan file not written yet."""
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id,
        owner_id=owner.id,
        root_id=chat_id,
        title="t",
        plan_mode=True,
        updated_at=datetime.now(UTC),
    )
    plan = workspace / ".agentgql" / "plans" / f"PLAN-{chat_id}.md"
    plan.parent.mkdir(parents=True)
    return FakeTurn(
        workspace_dir=workspace,
        chat_id=chat_id,
        owner_id=owner.id,
        plan_mode=True,
        plan_path=str(plan),
        root_id=chat_id,
    )


def plan_file(turn: FakeTurn) -> Path:
    assert turn.plan_path is not None
    return Path(turn.plan_path)


async def test_the_plan_is_stored_as_markdown_and_linked_to_the_chat(
    planning: FakeTurn,
) -> None:
    plan_file(planning).write_text(PLAN)
    result = await propose_plan({"path": planning.plan_path}, planning)

    file_id = uuid.UUID(result["fileId"])
    assert result == {
        "ok": True,
        "path": f".agentgql/plans/PLAN-{planning.chat_id}.md",
        "kind": "plan",
        "fileId": str(file_id),
        "fileUrl": f"/files/{file_id}",
        "mediaType": "text/markdown",
    }
    links = await ChatFileLink.filter(chat_id=planning.chat_id).values_list("file_id", flat=True)
    assert links == [file_id]
    [meta] = (await linked_files([planning.chat_id]))[planning.chat_id]
    assert (meta.name, meta.mime_type, meta.size_bytes) == (
        f"PLAN-{planning.chat_id}.md",
        "text/markdown",
        len(PLAN.encode()),
    )
    stored = await owned_file(planning.owner_id, file_id)
    assert stored is not None
    assert stored.data == plan_file(planning).read_bytes()


async def test_proposing_a_revised_plan_links_another_file(planning: FakeTurn) -> None:
    plan_file(planning).write_text(PLAN)
    first = await propose_plan({"path": planning.plan_path}, planning)
    again = await propose_plan({"path": planning.plan_path}, planning)
    assert again["fileId"] == first["fileId"]  # same bytes: the same file, linked once
    plan_file(planning).write_text(PLAN + "3. Add a regression test.\n")
    revised = await propose_plan({"path": planning.plan_path}, planning)
    assert revised["fileId"] != first["fileId"]
    links = await ChatFileLink.filter(chat_id=planning.chat_id).order_by("id")
    assert [str(link.file_id) for link in links] == [first["fileId"], revised["fileId"]]  # type: ignore[attr-defined]


async def test_a_plan_of_exactly_the_limit_is_accepted(planning: FakeTurn) -> None:
    plan_file(planning).write_text("#" * PLAN_MAX_BYTES)
    result = await propose_plan({"path": planning.plan_path}, planning)
    assert result["ok"] is True


async def test_any_markdown_file_in_the_workspace_may_be_proposed(
    planning: FakeTurn, workspace: Path
) -> None:
    (workspace / "docs").mkdir()
    (workspace / "docs" / "DESIGN.MD").write_text(PLAN)
    result = await propose_plan({"path": str(workspace / "docs" / "DESIGN.MD")}, planning)
    assert result["path"] == "docs/DESIGN.MD"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "is empty; write the plan first"),
        (b"#" * (PLAN_MAX_BYTES + 1), f"a plan may be at most {PLAN_MAX_BYTES}"),
        (b"# Plan \xff\xfe\n", "is not UTF-8 text"),
    ],
    ids=["empty", "too-large", "not-utf8"],
)
async def test_a_bad_plan_file_is_refused(planning: FakeTurn, content: bytes, error: str) -> None:
    plan_file(planning).write_bytes(content)
    with pytest.raises(ToolError, match=error):
        await propose_plan({"path": planning.plan_path}, planning)
    assert not await ChatFileLink.filter(chat_id=planning.chat_id).exists()


async def test_paths_are_checked(planning: FakeTurn, workspace: Path, outside: Path) -> None:
    plan_file(planning).write_text(PLAN)
    (outside / "plan.md").write_text(PLAN)
    (workspace / "escape.md").symlink_to(outside / "plan.md")
    (workspace / "folder.md").mkdir()
    relative = f".agentgql/plans/PLAN-{planning.chat_id}.md"
    cases = {
        relative: "absolute path",
        str(workspace / "notes.txt"): "must be a Markdown file",
        str(workspace / "missing.md"): "missing.md does not exist",
        str(workspace / "folder.md"): "folder.md is a directory",
        str(outside / "plan.md"): "path escapes the workspace",
        str(workspace / ".." / "outside" / "plan.md"): "path escapes the workspace",
        str(workspace / "escape.md"): "path escapes the workspace",
    }
    for path, error in cases.items():
        with pytest.raises(ToolError, match=error):
            await propose_plan({"path": path}, planning)
    with pytest.raises(ToolError, match="argument 'path' is required"):
        await propose_plan({}, planning)
    assert not await ChatFileLink.filter(chat_id=planning.chat_id).exists()


async def test_the_relative_path_refusal_names_the_plan_file(planning: FakeTurn) -> None:
    with pytest.raises(ToolError) as refused:
        await propose_plan({"path": "PLAN.md"}, planning)
    assert str(planning.plan_path) in str(refused.value)


async def test_without_a_workspace_there_is_nothing_to_propose(planning: FakeTurn) -> None:
    planning.workspace_dir = None
    with pytest.raises(ToolError, match="this chat has no workspace"):
        await propose_plan({"path": "/anywhere/PLAN.md"}, planning)
