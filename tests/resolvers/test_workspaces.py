"""Workspaces: creating one (files really made by the server's local backend),
TTLs, the allowlist, ownership everywhere, chats bound to workspaces, and
``chatsByWorkspace``.

Every test works with its own fresh users; templates and the workspace
settings are cleared before each.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from db import chat_config
from db.models import Chat, SiteConfig, Workspace, WorkspaceTemplate
from db.vocabulary import WorkspaceSourceKind, WorkspaceStatus
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.workspaces import chats_by_workspace
from server.settings import Settings
from tests.harness import GraphQLClient, Person, counted_queries, new_person

WORKSPACE_FIELDS = """
fragment W on Workspace {
  id name status ttlSeconds lastActiveAt stoppedAt createdAt template { id name }
}"""
CREATE = (
    """
mutation($input: CreateWorkspaceInput!) {
  createWorkspace(input: $input) { workspace { ...W } warnings }
}"""
    + WORKSPACE_FIELDS
)
LIST = "{ workspaces { ...W } }" + WORKSPACE_FIELDS
NODE = "query($id: ID!) { node(id: $id) { __typename ... on Workspace { name } } }"
CREATE_CHAT = """
mutation($input: CreateChatInput!) {
  createChat(input: $input) { chat { id workspace { id name } } }
}"""
UPDATE_CHAT = """
mutation($input: UpdateChatInput!) { updateChat(input: $input) { id workspace { id } } }"""
CHAT = "query($id: ID!) { chat(id: $id) { id workspace { id } } }"
BY_WORKSPACE = """
query($ids: [ID!]!) { chatsByWorkspace(workspaceIds: $ids) { id title } }"""
SET_CONFIG = """
mutation($input: UpdateChatConfigInput!) {
  updateChatConfig(input: $input) { workspaceTtlSeconds }
}"""

BASE = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def clean_settings(app: Starlette) -> None:
    await WorkspaceTemplate.all().delete()
    await SiteConfig.filter(
        key__in=[chat_config.TEMPLATE_ALLOWLIST_KEY, chat_config.WORKSPACE_TTL_KEY]
    ).delete()


@pytest.fixture
async def me(admin_token: str) -> Person:
    return await new_person()


@pytest.fixture
async def other(admin_token: str) -> Person:
    return await new_person()


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    source = tmp_path / "template-source"
    (source / "src").mkdir(parents=True)
    (source / "src" / "main.py").write_text("print('hello')\n")
    return source


async def template(
    source: Path, name: str = "python", *, ttl: int | None = None, deprecated: bool = False
) -> WorkspaceTemplate:
    return await WorkspaceTemplate.create(
        name=name,
        source=str(source),
        source_kind=WorkspaceSourceKind.DIRECTORY,
        default_ttl_s=ttl,
        deprecated=deprecated,
    )


def tid(row: WorkspaceTemplate) -> str:
    return global_id.encode("WorkspaceTemplate", row.id)


def wid(key: uuid.UUID) -> str:
    return global_id.encode("Workspace", key)


async def create(gql: GraphQLClient, person: Person, **values: Any) -> Any:
    data = await gql.ok(CREATE, {"input": {"name": "work", **values}}, token=person.token)
    return data["createWorkspace"]


async def create_error(gql: GraphQLClient, person: Person, **values: Any) -> Any:
    return await gql.error(CREATE, {"input": {"name": "work", **values}}, token=person.token)


async def site_ttl(gql: GraphQLClient, admin_token: str, seconds: int) -> None:
    await gql.ok(SET_CONFIG, {"input": {"workspaceTtlSeconds": seconds}}, token=admin_token)


async def workspace_row(owner: Person, name: str = "ws") -> Workspace:
    return await Workspace.create(
        owner_id=owner.user.id,
        name=name,
        directory=str(uuid.uuid4()),
        last_active_at=datetime.now(UTC),
    )


# --- createWorkspace ---------------------------------------------------------------


async def test_create_from_a_directory_template(
    gql: GraphQLClient, me: Person, source_dir: Path, settings: Settings
) -> None:
    row = await template(source_dir, ttl=7200)
    created = await create(gql, me, name="  my work  ", templateId=tid(row))
    workspace = created["workspace"]
    assert workspace["name"] == "my work"
    assert workspace["status"] == "RUNNING"
    assert workspace["stoppedAt"] is None
    assert workspace["template"] == {"id": tid(row), "name": "python"}
    assert created["warnings"] == []
    stored = await Workspace.get(id=global_id.decode_uuid(workspace["id"], "Workspace"))
    assert stored.owner_id == me.user.id  # type: ignore[attr-defined]
    assert stored.status == WorkspaceStatus.RUNNING
    directory = settings.resolved_workspaces_dir() / stored.directory
    assert (directory / "src" / "main.py").read_text() == "print('hello')\n"


async def test_create_without_a_template_makes_an_empty_repository(
    gql: GraphQLClient, me: Person, settings: Settings
) -> None:
    created = await create(gql, me)
    assert created["workspace"]["template"] is None
    assert created["workspace"]["ttlSeconds"] is None
    assert created["warnings"] == ["This workspace never stops on its own (no TTL)."]
    stored = await Workspace.get(id=global_id.decode_uuid(created["workspace"]["id"], "Workspace"))
    directory = settings.resolved_workspaces_dir() / stored.directory
    process = await asyncio.create_subprocess_exec(
        "git", "-C", str(directory), "status", "--porcelain", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert out == b""


async def test_site_ttl_zero_uses_the_template_default(
    gql: GraphQLClient, me: Person, admin_token: str, source_dir: Path
) -> None:
    row = await template(source_dir, ttl=7200)
    await site_ttl(gql, admin_token, 0)
    created = await create(gql, me, templateId=tid(row))
    assert created["workspace"]["ttlSeconds"] == 7200
    stored = await Workspace.get(id=global_id.decode_uuid(created["workspace"]["id"], "Workspace"))
    assert stored.ttl_s == 7200


async def test_an_explicit_site_ttl_wins(
    gql: GraphQLClient, me: Person, admin_token: str, source_dir: Path
) -> None:
    row = await template(source_dir, ttl=7200)
    await site_ttl(gql, admin_token, 600)
    assert (await create(gql, me, templateId=tid(row)))["workspace"]["ttlSeconds"] == 600
    assert (await create(gql, me))["workspace"]["ttlSeconds"] == 600


async def test_non_allowlisted_template_is_refused(
    gql: GraphQLClient, me: Person, admin_token: str, source_dir: Path
) -> None:
    allowed = await template(source_dir, "allowed")
    refused = await template(source_dir, "refused")
    await gql.ok(SET_CONFIG, {"input": {"templateAllowlist": [tid(allowed)]}}, token=admin_token)
    error = await create_error(gql, me, templateId=tid(refused))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "templateId"}
    assert "allowlist" in error["message"]
    assert await Workspace.filter(owner_id=me.user.id).count() == 0
    assert (await create(gql, me, templateId=tid(allowed)))["workspace"]["template"]["name"] == (
        "allowed"
    )


async def test_deprecated_template_is_refused(
    gql: GraphQLClient, me: Person, source_dir: Path
) -> None:
    row = await template(source_dir, deprecated=True)
    error = await create_error(gql, me, templateId=tid(row))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "templateId"}
    assert "deprecated" in error["message"]
    assert await Workspace.filter(owner_id=me.user.id).count() == 0


async def test_missing_template_is_not_found(gql: GraphQLClient, me: Person) -> None:
    gid = global_id.encode("WorkspaceTemplate", uuid.uuid4())
    error = await create_error(gql, me, templateId=gid)
    assert error["extensions"]["code"] == "NOT_FOUND"
    error = await create_error(gql, me, templateId=global_id.encode("Chat", uuid.uuid4()))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "templateId"}


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "tab\there"])
async def test_bad_name_is_refused(gql: GraphQLClient, me: Person, name: str) -> None:
    error = await create_error(gql, me, name=name)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}
    assert await Workspace.filter(owner_id=me.user.id).count() == 0


async def test_create_needs_a_signed_in_user(gql: GraphQLClient) -> None:
    error = await gql.error(CREATE, {"input": {"name": "x"}})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_without_a_backend_the_error_says_so(
    gql: GraphQLClient, me: Person, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.state._state, "provision_workspace", None)
    error = await create_error(gql, me)
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "no workspace backend" in error["message"]
    assert await Workspace.filter(owner_id=me.user.id).count() == 0


# --- reading -------------------------------------------------------------------------


async def test_workspaces_lists_your_own_newest_first(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    for name in ("first", "second"):
        await create(gql, me, name=name)
    await create(gql, other, name="theirs")
    data = await gql.ok(LIST, token=me.token)
    assert [w["name"] for w in data["workspaces"]] == ["second", "first"]


async def test_node_is_null_for_another_users_workspace(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    mine = (await create(gql, me, name="mine"))["workspace"]["id"]
    assert (await gql.ok(NODE, {"id": mine}, token=me.token))["node"] == {
        "__typename": "Workspace",
        "name": "mine",
    }
    assert (await gql.ok(NODE, {"id": mine}, token=other.token))["node"] is None


async def test_a_deleted_template_leaves_the_workspace(
    gql: GraphQLClient, me: Person, source_dir: Path
) -> None:
    row = await template(source_dir)
    workspace = (await create(gql, me, templateId=tid(row)))["workspace"]
    await row.delete()
    data = await gql.ok(LIST, token=me.token)
    assert [(w["id"], w["template"]) for w in data["workspaces"]] == [(workspace["id"], None)]


# --- chats bound to workspaces -------------------------------------------------------


async def test_create_chat_binds_your_workspace(gql: GraphQLClient, me: Person) -> None:
    workspace = await workspace_row(me, "bound")
    data = await gql.ok(
        CREATE_CHAT,
        {"input": {"content": [{"text": "hi"}], "workspaceId": wid(workspace.id)}},
        token=me.token,
    )
    assert data["createChat"]["chat"]["workspace"] == {"id": wid(workspace.id), "name": "bound"}


async def test_create_chat_with_another_users_workspace_is_not_found(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    theirs = await workspace_row(other)
    for key in (theirs.id, uuid.uuid4()):
        error = await gql.error(
            CREATE_CHAT,
            {"input": {"content": [{"text": "hi"}], "workspaceId": wid(key)}},
            token=me.token,
        )
        assert error["extensions"]["code"] == "NOT_FOUND"
    assert await Chat.filter(owner_id=me.user.id).count() == 0


async def test_update_chat_checks_the_workspace_owner(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    mine = await workspace_row(me)
    theirs = await workspace_row(other)
    chat = await chat_row(me, "c", workspace=None)
    gid = global_id.encode("Chat", chat.id)
    error = await gql.error(
        UPDATE_CHAT, {"input": {"id": gid, "workspaceId": wid(theirs.id)}}, token=me.token
    )
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert (await Chat.get(id=chat.id)).workspace_id is None
    data = await gql.ok(
        UPDATE_CHAT, {"input": {"id": gid, "workspaceId": wid(mine.id)}}, token=me.token
    )
    assert data["updateChat"]["workspace"] == {"id": wid(mine.id)}
    data = await gql.ok(UPDATE_CHAT, {"input": {"id": gid, "workspaceId": None}}, token=me.token)
    assert data["updateChat"]["workspace"] is None


async def test_chat_workspace_of_another_user_reads_as_null(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    theirs = await workspace_row(other)
    chat = await chat_row(me, "c", workspace=theirs)  # written directly, bypassing the check
    data = await gql.ok(CHAT, {"id": global_id.encode("Chat", chat.id)}, token=me.token)
    assert data["chat"]["workspace"] is None


# --- chatsByWorkspace ----------------------------------------------------------------


async def chat_row(
    owner: Person,
    title: str,
    *,
    workspace: Workspace | None,
    minutes: int = 0,
    archived: bool = False,
    parent: Chat | None = None,
) -> Chat:
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id,
        owner_id=owner.user.id,
        parent_id=None if parent is None else parent.id,
        root_id=chat_id if parent is None else parent.root_id,
        title=title,
        archived=archived,
        workspace_id=None if workspace is None else workspace.id,
        updated_at=BASE + timedelta(minutes=minutes),
    )


async def by_workspace(gql: GraphQLClient, person: Person, ids: list[str]) -> list[str]:
    data = await gql.ok(BY_WORKSPACE, {"ids": ids}, token=person.token)
    return [c["title"] for c in data["chatsByWorkspace"]]


async def test_latest_non_archived_chat_per_workspace(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    one, two, empty = [await workspace_row(me) for _ in range(3)]
    await chat_row(me, "one-old", workspace=one, minutes=1)
    await chat_row(me, "one-new", workspace=one, minutes=5)
    await chat_row(me, "one-archived", workspace=one, minutes=9, archived=True)
    await chat_row(me, "two", workspace=two, minutes=2)
    await chat_row(other, "not mine", workspace=two, minutes=30)
    await chat_row(me, "unbound", workspace=None, minutes=40)
    ids = [wid(two.id), wid(empty.id), wid(one.id), wid(two.id)]
    assert await by_workspace(gql, me, ids) == ["two", "one-new"]
    assert await by_workspace(gql, other, ids) == ["not mine"]
    assert await by_workspace(gql, me, []) == []


async def test_a_sub_agent_chat_is_never_a_workspaces_latest_chat(
    gql: GraphQLClient, me: Person
) -> None:
    """Sub-agents work in their root chat's workspace; the workspace's chat is the root."""
    shared, only_sub_agents = [await workspace_row(me) for _ in range(2)]
    root = await chat_row(me, "root", workspace=shared, minutes=1)
    await chat_row(me, "sub-agent", workspace=shared, minutes=5, parent=root)
    elsewhere = await chat_row(me, "elsewhere", workspace=None, minutes=2)
    await chat_row(me, "lone sub-agent", workspace=only_sub_agents, minutes=6, parent=elsewhere)
    ids = [wid(shared.id), wid(only_sub_agents.id)]
    assert await by_workspace(gql, me, ids) == ["root"]


async def test_chats_by_workspace_is_one_query(me: Person) -> None:
    workspaces = [await workspace_row(me) for _ in range(5)]
    for index, workspace in enumerate(workspaces):
        await chat_row(me, f"c{index}", workspace=workspace, minutes=index)
    ctx = RequestContext(request_id="test", viewer=me.user)
    with counted_queries() as sent:
        chats = await chats_by_workspace(ctx, [wid(w.id) for w in workspaces])
    assert [c.title for c in chats] == ["c0", "c1", "c2", "c3", "c4"]
    assert len(sent) == 1


async def test_at_most_25_workspace_ids(gql: GraphQLClient, me: Person) -> None:
    ids = [wid(uuid.uuid4()) for _ in range(26)]
    error = await gql.error(BY_WORKSPACE, {"ids": ids}, token=me.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "workspaceIds", "maximum": 25}
    assert await by_workspace(gql, me, ids[:25]) == []


async def test_bad_workspace_id_names_its_index(gql: GraphQLClient, me: Person) -> None:
    error = await gql.error(BY_WORKSPACE, {"ids": [wid(uuid.uuid4()), "junk"]}, token=me.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "workspaceIds[1]"}


async def test_chats_by_workspace_needs_a_signed_in_user(gql: GraphQLClient) -> None:
    error = await gql.error(BY_WORKSPACE, {"ids": []})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
