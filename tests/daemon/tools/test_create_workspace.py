"""``create_workspace``: only allowed templates, the site TTL (0 = the template's
default), and the chat and the running turn bound to the new workspace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette

from daemon.tool_registry import ToolError
from daemon.tools.create_workspace import TOOL
from daemon.workspace_backend import LocalWorkspaceBackend
from db.chat_config import (
    TEMPLATE_ALLOWLIST_KEY,
    WORKSPACE_TTL_KEY,
    allowlist_value,
    delete_raw,
    write_raw,
)
from db.models import Chat, User, Workspace, WorkspaceTemplate
from db.vocabulary import WORKSPACE_NAME_MAX, WorkspaceSourceKind, WorkspaceStatus
from tests.daemon.test_git_scan import make_repo
from tests.daemon.tools.workspace_turn import FakeTurn

create_workspace_tool = TOOL.run


@pytest.fixture(scope="module")
async def owner(app: Starlette) -> User:
    return await User.create(username=f"cw{uuid.uuid4().hex[:8]}", password_hash="x")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    make_repo(root / "repo", {"README.md": "from git\n"})
    (root / "tree").mkdir()
    (root / "tree" / "notes.txt").write_text("from a directory\n")
    return root


async def template(
    sources: Path,
    *,
    git: bool = False,
    default_ttl_s: int | None = None,
    deprecated: bool = False,
) -> WorkspaceTemplate:
    return await WorkspaceTemplate.create(
        name=f"tpl-{uuid.uuid4().hex[:8]}",
        source=str(sources / ("repo" if git else "tree")),
        source_kind=WorkspaceSourceKind.GIT if git else WorkspaceSourceKind.DIRECTORY,
        default_ttl_s=default_ttl_s,
        deprecated=deprecated,
    )


@pytest.fixture
async def site() -> AsyncIterator[None]:
    """Tests set the allowlist and TTL settings freely; both are removed after."""
    yield
    await delete_raw(TEMPLATE_ALLOWLIST_KEY)
    await delete_raw(WORKSPACE_TTL_KEY)


@pytest.fixture
def backend(tmp_path: Path) -> LocalWorkspaceBackend:
    return LocalWorkspaceBackend(tmp_path / "workspaces")


@pytest.fixture
async def turn(owner: User, backend: LocalWorkspaceBackend) -> FakeTurn:
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id, owner_id=owner.id, root_id=chat_id, title="t", updated_at=datetime.now(UTC)
    )
    return FakeTurn(
        workspace_dir=None, chat_id=chat_id, owner_id=owner.id, root_id=chat_id, backend=backend
    )


async def nothing_created(turn: FakeTurn, backend: LocalWorkspaceBackend, rows: int) -> None:
    """The chat and the turn are unbound, and no row or directory was left behind."""
    assert (await Chat.get(id=turn.chat_id)).workspace_id is None
    assert (turn.workspace_id, turn.workspace_dir, turn.plan_path) == (None, None, None)
    assert await Workspace.all().count() == rows
    assert not backend.root.exists() or not list(backend.root.iterdir())


async def test_the_chat_and_the_turn_move_into_the_new_workspace(
    sources: Path, site: None, turn: FakeTurn, backend: LocalWorkspaceBackend
) -> None:
    chosen = await template(sources, git=True, default_ttl_s=7200)
    result = await create_workspace_tool({"template": chosen.name, "name": " api work "}, turn)

    workspace = await Workspace.get(id=uuid.UUID(result["workspaceId"]))
    assert result == {
        "workspaceId": str(workspace.id),
        "name": "api work",
        "template": chosen.name,
        "ttlSeconds": 7200,
    }
    assert workspace.owner_id == turn.owner_id  # type: ignore[attr-defined]
    assert workspace.template_id == chosen.id  # type: ignore[attr-defined]
    assert (workspace.status, workspace.ttl_s) == (WorkspaceStatus.RUNNING, 7200)
    assert (await Chat.get(id=turn.chat_id)).workspace_id == workspace.id

    directory = backend.root / str(workspace.id)
    assert turn.workspace_id == workspace.id
    assert turn.workspace_dir == directory
    assert (directory / "README.md").read_text() == "from git\n"
    assert turn.plan_path == f"/workspace/.agentgql/plans/PLAN-{turn.chat_id}.md"  # in-sandbox
    assert "/.agentgql/" in (directory / ".git" / "info" / "exclude").read_text()


@pytest.mark.parametrize(
    ("site_ttl_ms", "default_ttl_s", "ttl_s"),
    [
        (None, 7200, 7200),  # unset is 0: the template's default
        (0, 7200, 7200),
        (0, None, None),  # the template's default may be "never"
        (3_600_000, 7200, 3600),  # an explicit site TTL wins
        (3_600_000, None, 3600),
    ],
    ids=["unset", "zero", "zero-no-default", "site-wins", "site-over-never"],
)
async def test_the_site_ttl_applies_and_zero_means_the_template_default(
    sources: Path,
    site: None,
    turn: FakeTurn,
    site_ttl_ms: int | None,
    default_ttl_s: int | None,
    ttl_s: int | None,
) -> None:
    if site_ttl_ms is not None:
        await write_raw(WORKSPACE_TTL_KEY, site_ttl_ms)
    chosen = await template(sources, default_ttl_s=default_ttl_s)
    result = await create_workspace_tool({"template": str(chosen.id)}, turn)
    assert result["ttlSeconds"] == ttl_s
    workspace = await Workspace.get(id=uuid.UUID(result["workspaceId"]))
    assert workspace.ttl_s == ttl_s
    assert workspace.name == chosen.name  # no name given: the template's
    assert turn.workspace_dir is not None
    assert (turn.workspace_dir / "notes.txt").read_text() == "from a directory\n"


async def test_a_template_outside_the_allowlist_is_refused(
    sources: Path, site: None, turn: FakeTurn, backend: LocalWorkspaceBackend
) -> None:
    allowed = await template(sources)
    other = await template(sources)
    await write_raw(TEMPLATE_ALLOWLIST_KEY, allowlist_value([allowed.id]))
    rows = await Workspace.all().count()
    for ref in (other.name, str(other.id)):
        with pytest.raises(ToolError, match=f"no allowed template.*are: {allowed.name}$"):
            await create_workspace_tool({"template": ref}, turn)
    await nothing_created(turn, backend, rows)

    result = await create_workspace_tool({"template": allowed.name}, turn)
    assert result["template"] == allowed.name


async def test_a_deprecated_template_is_refused(
    sources: Path, site: None, turn: FakeTurn, backend: LocalWorkspaceBackend
) -> None:
    old = await template(sources, deprecated=True)
    rows = await Workspace.all().count()
    with pytest.raises(ToolError, match=f"no allowed template '{old.name}'"):
        await create_workspace_tool({"template": old.name}, turn)
    await nothing_created(turn, backend, rows)


async def test_a_chat_gets_one_workspace(sources: Path, site: None, turn: FakeTurn) -> None:
    chosen = await template(sources)
    first = await create_workspace_tool({"template": chosen.name}, turn)
    with pytest.raises(ToolError, match="already has a workspace"):
        await create_workspace_tool({"template": chosen.name}, turn)
    assert str((await Chat.get(id=turn.chat_id)).workspace_id) == first["workspaceId"]


async def test_without_a_backend_no_workspace_can_be_made(
    sources: Path, site: None, turn: FakeTurn, backend: LocalWorkspaceBackend
) -> None:
    chosen = await template(sources)
    turn.backend = None
    rows = await Workspace.all().count()
    with pytest.raises(ToolError, match="workspaces are not available"):
        await create_workspace_tool({"template": chosen.name}, turn)
    await nothing_created(turn, backend, rows)


async def test_a_failing_source_is_a_readable_error(
    site: None, turn: FakeTurn, backend: LocalWorkspaceBackend, tmp_path: Path
) -> None:
    missing = await WorkspaceTemplate.create(
        name=f"tpl-{uuid.uuid4().hex[:8]}",
        source=str(tmp_path / "gone"),
        source_kind=WorkspaceSourceKind.DIRECTORY,
    )
    rows = await Workspace.all().count()
    with pytest.raises(ToolError, match=r"creating the workspace failed: .* is not a directory"):
        await create_workspace_tool({"template": missing.name}, turn)
    await nothing_created(turn, backend, rows)


async def test_a_long_name_is_cut_and_a_blank_one_replaced(
    sources: Path, site: None, owner: User, backend: LocalWorkspaceBackend
) -> None:
    chosen = await template(sources)
    names = []
    for given in ("x" * (WORKSPACE_NAME_MAX + 50), "   "):
        chat_id = uuid.uuid4()
        await Chat.create(
            id=chat_id, owner_id=owner.id, root_id=chat_id, title="t", updated_at=datetime.now(UTC)
        )
        turn = FakeTurn(workspace_dir=None, chat_id=chat_id, owner_id=owner.id, backend=backend)
        result = await create_workspace_tool({"template": chosen.name, "name": given}, turn)
        names.append(result["name"])
    assert names == ["x" * WORKSPACE_NAME_MAX, chosen.name]
