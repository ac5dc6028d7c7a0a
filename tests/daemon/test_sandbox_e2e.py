"""Sandbox escapes tried the way a member would: through the API, with the SCRIPTED
model calling ``execute`` and ``read_file`` in the member's workspace.

Real uvicorn, the daemon with its standard tools and real bubblewrap. Every
attempt is refused or contained, and the server keeps answering afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette

from db.models import Workspace
from resolvers import global_id
from server.settings import Settings
from tests.conftest import make_settings
from tests.daemon.live import (
    FAST_DAEMON,
    GraphQLSocket,
    eventually,
    http_client,
    new_user,
    running_app,
    settled,
)
from tests.daemon.tools.sandboxed import host_pids, needs_bwrap, sleep_marker
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient

pytestmark = needs_bwrap

WORKSPACE = """mutation($name: String!) {
  createWorkspace(input: {name: $name}) { workspace { id } } }"""
CREATE = """mutation($text: String!, $ws: ID!) {
  createChat(input: {content: [{text: $text}], workspaceId: $ws}) { chat { id } } }"""
SEND = """mutation($id: ID!, $text: String!) {
  sendMessage(input: {chatId: $id, content: [{text: $text}]}) { queued } }"""
CHAT_EVENTS = """subscription($id: ID!) { chatEvents(chatId: $id) { __typename
  ... on StatusChanged { status } } }"""
RESULTS = """query($id: ID!) { chat(id: $id) { id status
  messages(last: 50) { nodes { parts { __typename
    ... on ToolResultPart { toolName result isError } } } } } }"""


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # A fork bomb (here or in a neighbour's run) loads the machine: the daemon must
    # not think itself dead and hand a turn of real commands to a second run.
    fast = {**FAST_DAEMON, "daemon_stale_after_s": 600}
    return make_settings(database_url, tmp_path_factory, **fast, pull_requests=False)


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(settings) as application:  # the standard agent tools
        yield application


@pytest.fixture(scope="module")
async def client(live_server: str) -> AsyncIterator[GraphQLClient]:
    async with http_client(live_server) as gql:
        yield gql


@pytest.fixture(scope="module")
async def member(client: GraphQLClient) -> str:
    await client.ok(SIGN_UP, {"u": "admin", "p": PASSWORD})  # the first account
    return await new_user(client, "attacker")


async def make_workspace(client: GraphQLClient, token: str, name: str) -> str:
    data = await client.ok(WORKSPACE, {"name": name}, token=token)
    return str(data["createWorkspace"]["workspace"]["id"])


async def host_dir(app: Starlette, workspace_gid: str) -> Path:
    row = await Workspace.get(id=global_id.decode_uuid(workspace_gid, "Workspace"))
    path: Path = app.state.workspace_backend.path(row)
    return path


@pytest.fixture(scope="module")
async def victim_dir(client: GraphQLClient, app: Starlette) -> Path:
    """Another member's workspace, holding something private."""
    token = await new_user(client, "victim")
    root = await host_dir(app, await make_workspace(client, token, "victim"))
    (root / "private.txt").write_text("victim's private notes\n")
    return root


@pytest.fixture(scope="module")
async def chat(client: GraphQLClient, member: str) -> str:
    workspace = await make_workspace(client, member, "attack")
    data = await client.ok(CREATE, {"text": "/reply ready", "ws": workspace}, token=member)
    chat_id = str(data["createChat"]["chat"]["id"])
    await eventually(lambda: _status(client, member, chat_id, "WAITING"))
    return chat_id


def call(name: str, **args: Any) -> str:
    return f"/tool {name} {json.dumps(args)}"


async def turn(
    client: GraphQLClient, live_server: str, token: str, chat: str, *calls: str
) -> list[dict[str, Any]]:
    """Runs one turn of tool calls; the tool results it produced, in order."""
    before = len(await _results(client, token, chat))
    async with GraphQLSocket.open(live_server, token) as socket_:
        events = await socket_.subscribe(CHAT_EVENTS, {"id": chat}, field="chatEvents")
        await client.ok(SEND, {"id": chat, "text": "\n".join(calls)}, token=token)
        await events.until(lambda e: e.get("status") == "RUNNING", timeout=30)
        await events.until(settled, timeout=100)  # under the suite's 120 s per test
    results = (await _results(client, token, chat))[before:]
    assert len(results) == len(calls), results
    return results


async def _results(client: GraphQLClient, token: str, chat: str) -> list[dict[str, Any]]:
    data = await client.ok(RESULTS, {"id": chat}, token=token)
    return [
        p
        for m in data["chat"]["messages"]["nodes"]
        for p in m["parts"]
        if p["__typename"] == "ToolResultPart"
    ]


async def _status(client: GraphQLClient, token: str, chat: str, status: str) -> bool:
    data = await client.ok(RESULTS, {"id": chat}, token=token)
    return bool(data["chat"]["status"] == status)


def output(result: dict[str, Any]) -> str:
    assert not result["isError"], result
    return str(result["result"]["output"])


async def test_the_secret_key_stays_out_of_reach(
    client: GraphQLClient, live_server: str, member: str, chat: str, settings: Settings
) -> None:
    key = settings.resolved_secret_key()
    key_path = settings.data_dir / "secret.key"
    results = await turn(
        client,
        live_server,
        member,
        chat,
        call("execute", command="cp ../../secret.key k.txt; cp ../../../secret.key k.txt"),
        call("execute", command=f"cp {key_path} k.txt; cat {key_path}"),
        call("read_file", path="k.txt"),
        call("read_file", path=str(key_path)),
        call("read_file", path="../../secret.key"),
    )

    assert all(key not in json.dumps(r) for r in results)
    assert "No such file or directory" in output(results[1])
    assert [r["isError"] for r in results[2:]] == [True, True, True]
    assert "k.txt does not exist" in results[2]["result"]["error"]
    for refused in results[3:]:
        assert "escapes the workspace" in refused["result"]["error"]
        assert str(settings.data_dir) not in refused["result"]["error"].replace(str(key_path), "")


async def test_the_data_dir_other_workspaces_and_the_server_are_absent(
    client: GraphQLClient,
    live_server: str,
    member: str,
    chat: str,
    settings: Settings,
    victim_dir: Path,
) -> None:
    results = await turn(
        client,
        live_server,
        member,
        chat,
        call("execute", command=f"ls {settings.data_dir}; ls ..; ls /"),
        call("execute", command=f"cat {victim_dir}/private.txt; cat ../*/private.txt"),
        call("execute", command=f"cat /proc/{os.getpid()}/environ; ls /proc"),
        call("execute", command="pwd"),
    )

    listing = output(results[0])
    assert "secret.key" not in listing
    assert "workspaces" not in listing
    assert "victim's private notes" not in output(results[1])
    assert f"/proc/{os.getpid()}/environ: No such file" in output(results[2])
    assert output(results[3]) == "/workspace\n"


async def test_writes_outside_the_workspace_fail(
    client: GraphQLClient, live_server: str, member: str, chat: str, settings: Settings
) -> None:
    name = f"pwned-{uuid.uuid4().hex[:8]}"
    targets = [settings.data_dir / name, Path("/usr/local") / name, Path("/tmp") / name]
    command = "; ".join(f"echo x > {t}" for t in targets) + f"; echo x > ../{name}"
    (result,) = await turn(client, live_server, member, chat, call("execute", command=command))

    assert output(result).count("echo: cannot create") + output(result).count("Read-only") >= 1
    assert not any(t.exists() for t in targets)
    assert not (settings.resolved_workspaces_dir() / name).exists()


async def test_the_database_port_is_unreachable(
    client: GraphQLClient, live_server: str, member: str, chat: str, database_url: str
) -> None:
    where = urlsplit(database_url)
    host, port = where.hostname or "127.0.0.1", where.port or 5432
    with socket.create_connection((host, port), timeout=5):
        pass  # the server reaches its database there
    probe = f"bash -c 'echo > /dev/tcp/{host}/{port}' && echo CONNECTED; echo done"
    (result,) = await turn(client, live_server, member, chat, call("execute", command=probe))

    assert output(result).endswith("done\n")
    assert "CONNECTED" not in output(result)


async def test_a_fork_bomb_and_a_stubborn_process_are_contained(
    client: GraphQLClient, live_server: str, member: str, chat: str
) -> None:
    marker = sleep_marker()
    stubborn = f"trap '' TERM; (trap '' TERM; exec sleep {marker}) & wait"
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 30"
    results = await turn(
        client,
        live_server,
        member,
        chat,
        call("execute", command=stubborn, background=True),
        call("execute", command=bomb, timeout_s=3),
    )

    assert results[1]["result"]["timedOut"] is True

    # The turn is over: its background processes die with it, SIGTERM or not.
    async def stubborn_gone() -> bool:
        return not host_pids(marker)

    assert await eventually(stubborn_gone)
    # The server still answers and still runs commands.
    (after,) = await turn(client, live_server, member, chat, call("execute", command="echo ok"))
    assert output(after) == "ok\n"
