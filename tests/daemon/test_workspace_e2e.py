"""A workspace end to end: template → workspace → an agent turn writes a file →
``gitChanges`` streams the diff → ``chat.diff`` shows it; plan mode over the API.

Real uvicorn, real WebSockets, the daemon with its standard tools, the SCRIPTED
model calling them, and a real git repository as the template.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import ChatFile, ChatFileLink, Workspace
from tests.conftest import make_settings
from tests.daemon.live import (
    FAST_DAEMON,
    GraphQLSocket,
    chat_uuid,
    eventually,
    http_client,
    running_app,
    settled,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient

GIT_CHANGES = """subscription($id: ID!) {
  gitChanges(chatId: $id) { chatId scannedAt repositories { root branch unifiedDiff removed
    additions deletions changedFiles } }
}"""
DIFF = """query($id: ID!) { chat(id: $id) { id status planMode
  diff { source reason unifiedDiff files { path oldPath status additions deletions } }
  files { id name mimeType }
  messages(last: 20) { nodes { role parts { __typename
    ... on ToolResultPart { toolName result isError } ... on TextPart { text } } } } } }"""
CHAT_EVENTS = """subscription($id: ID!) { chatEvents(chatId: $id) { __typename
  ... on StatusChanged { status } } }"""
TEMPLATE = """mutation($name: String!, $source: String!) {
  createWorkspaceTemplate(input: {name: $name, sourceKind: GIT, source: $source}) {
    workspaceTemplate { id } } }"""
WORKSPACE = """mutation($template: ID!) {
  createWorkspace(input: {name: "garden", templateId: $template}) { workspace { id } } }"""
CREATE = """mutation($text: String!, $ws: ID!, $plan: Boolean) {
  createChat(input: {content: [{text: $text}], workspaceId: $ws, planMode: $plan}) {
    chat { id } } }"""
SEND = """mutation($id: ID!, $text: String!) {
  sendMessage(input: {chatId: $id, content: [{text: $text}]}) { queued } }"""


def tool_line(name: str, args: dict[str, Any]) -> str:
    return f"/tool {name} {json.dumps(args)}"


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    settings = make_settings(
        database_url,
        tmp_path_factory,
        **FAST_DAEMON,
        git_cooldown_s=0.05,
        git_poll_s=1.0,
        pull_requests=False,
    )
    async with running_app(settings) as application:  # the standard agent tools
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        yield gql


@pytest.fixture(scope="module")
async def admin(client: GraphQLClient) -> str:
    data = await client.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})
    return str(data["signUp"]["token"])


@pytest.fixture(scope="module")
def source_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("template-source")
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    (repo / "README.md").write_text("# garden\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-q", "-m", "init")
    return repo


@pytest.fixture(scope="module")
async def workspace(client: GraphQLClient, admin: str, source_repo: Path) -> str:
    made = await client.ok(TEMPLATE, {"name": "garden", "source": str(source_repo)}, token=admin)
    template = made["createWorkspaceTemplate"]["workspaceTemplate"]["id"]
    data = await client.ok(WORKSPACE, {"template": template}, token=admin)
    return str(data["createWorkspace"]["workspace"]["id"])


async def _run_until_settled(
    client: GraphQLClient, live_server: str, token: str, chat: str, text: str
) -> None:
    async with GraphQLSocket.open(live_server, token) as socket:
        events = await socket.subscribe(CHAT_EVENTS, {"id": chat}, field="chatEvents")
        await client.ok(SEND, {"id": chat, "text": text}, token=token)
        await events.until(lambda e: e.get("status") == "RUNNING")
        await events.until(settled)


async def test_a_written_file_streams_as_git_changes_and_shows_in_the_diff(
    client: GraphQLClient, live_server: str, admin: str, workspace: str
) -> None:
    made = await client.ok(CREATE, {"text": "/reply ready", "ws": workspace}, token=admin)
    chat = made["createChat"]["chat"]["id"]
    await eventually(lambda: _status(client, admin, chat, "WAITING"))

    async with GraphQLSocket.open(live_server, admin) as socket:
        changes = await socket.subscribe(GIT_CHANGES, {"id": chat}, field="gitChanges")
        first = await changes.next()
        assert first["chatId"] == chat
        write = tool_line("write_file", {"path": "notes.txt", "content": "one\ntwo\n"})
        await client.ok(SEND, {"id": chat, "text": write}, token=admin)
        frames = await changes.until(
            lambda e: any("notes.txt" in r["unifiedDiff"] for r in e["repositories"])
        )
    repo = next(r for r in frames[-1]["repositories"] if "notes.txt" in r["unifiedDiff"])
    assert repo["branch"] == "main"
    assert (repo["additions"], repo["deletions"], repo["changedFiles"]) == (2, 0, 1)
    assert not repo["removed"]

    async def diff_ready() -> dict[str, Any] | None:
        data = await client.ok(DIFF, {"id": chat}, token=admin)
        return data["chat"] if data["chat"]["diff"]["source"] == "LOCAL" else None

    shown = await eventually(diff_ready)
    assert shown["diff"]["files"] == [
        {"path": "notes.txt", "oldPath": None, "status": "added", "additions": 2, "deletions": 0}
    ]
    assert "+one" in shown["diff"]["unifiedDiff"]


async def test_plan_mode_refuses_other_writes_and_stops_after_the_plan(
    client: GraphQLClient, live_server: str, admin: str, workspace: str, app: Starlette
) -> None:
    made = await client.ok(
        CREATE, {"text": "/reply planning", "ws": workspace, "plan": True}, token=admin
    )
    chat = made["createChat"]["chat"]["id"]
    await eventually(lambda: _status(client, admin, chat, "WAITING"))
    row = await Workspace.get(id=_uuid(workspace))
    root: Path = app.state.workspace_backend.path(row)
    plan = str(root / ".agentgql" / "plans" / f"PLAN-{chat_uuid(chat)}.md")

    outside = tool_line("write_file", {"path": "src/app.py", "content": "print(1)\n"})
    await _run_until_settled(client, live_server, admin, chat, outside)
    assert not (root / "src" / "app.py").exists()

    steps = "\n".join(
        [
            tool_line("write_file", {"path": plan, "content": "# Plan\n\n1. Dig.\n"}),
            tool_line("propose_plan", {"path": plan}),
        ]
    )
    await _run_until_settled(client, live_server, admin, chat, steps)

    data = await client.ok(DIFF, {"id": chat}, token=admin)
    results = [
        p
        for m in data["chat"]["messages"]["nodes"]
        for p in m["parts"]
        if p["__typename"] == "ToolResultPart"
    ]
    refused = results[0]
    assert refused["toolName"] == "write_file"
    assert refused["isError"]
    assert "plan mode" in refused["result"]["error"]
    assert [(r["toolName"], r["isError"]) for r in results[1:]] == [
        ("write_file", False),
        ("propose_plan", False),
    ]
    # The turn ended at propose_plan: no model step after its result.
    assert data["chat"]["messages"]["nodes"][-1]["role"] == "TOOL"
    assert data["chat"]["files"] == [
        {"id": data["chat"]["files"][0]["id"], "name": Path(plan).name, "mimeType": "text/markdown"}
    ]
    stored = await ChatFile.get(id=results[2]["result"]["fileId"])
    assert bytes(stored.data) == b"# Plan\n\n1. Dig.\n"
    assert await ChatFileLink.filter(chat_id=chat_uuid(chat), file_id=stored.id).exists()


def _uuid(gid: str) -> Any:
    from resolvers import global_id

    return global_id.decode_uuid(gid, "Workspace")


async def _status(client: GraphQLClient, token: str, chat: str, status: str) -> bool:
    data = await client.ok(DIFF, {"id": chat}, token=token)
    return bool(data["chat"]["status"] == status)
