"""NUL and lone surrogates in what the model or a command produces never fail a turn.

PostgreSQL refuses ``\\u0000`` in jsonb and NUL in text, and a lone surrogate
cannot be encoded at all; yet commands print NUL, files hold it and models
stream it. Each case runs a real turn (real uvicorn, WebSockets, bubblewrap,
the SCRIPTED model or a fake OpenAI-compatible server over HTTP) and checks
what a user notices: the turn completes, the message is stored, and the
client sees U+FFFD where the NUL was — live deltas and the stored message alike.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage
from tests.conftest import make_settings
from tests.daemon.fake_llm import TEST_KEY, FakeLlm, JsonReply, SseReply, openai_stream
from tests.daemon.live import (
    CHAT_EVENTS,
    FAST_DAEMON,
    GraphQLSocket,
    chat_uuid,
    eventually,
    http_client,
    read_chat,
    running_app,
    settled,
    typename,
)
from tests.harness import PASSWORD, SIGN_UP, GraphQLClient

REPLACEMENT = "\ufffd"
TEMPLATE = """mutation($name: String!, $source: String!) {
  createWorkspaceTemplate(input: {name: $name, sourceKind: GIT, source: $source}) {
    workspaceTemplate { id } } }"""
WORKSPACE = """mutation($template: ID!) {
  createWorkspace(input: {name: "binary", templateId: $template}) { workspace { id } } }"""
CREATE = """mutation($text: String!, $ws: ID, $model: ID) {
  createChat(input: {content: [{text: $text}], workspaceId: $ws, modelConfigId: $model}) {
    chat { id } } }"""
DIFF = """query($id: ID!) { chat(id: $id) { diff { source unifiedDiff } } }"""
CREATE_PROVIDER = """
mutation($input: CreateProviderInput!) { createProvider(input: $input) { provider { id } } }"""
CREATE_MODEL = """
mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { modelConfig { id } } }"""


def tool_line(name: str, args: dict[str, Any]) -> str:
    return f"/tool {name} {json.dumps(args)}"


@pytest.fixture(scope="module")
async def app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    # A run is stale after 30 s, not 2: on a busy machine a takeover would replay a step.
    fast = {**FAST_DAEMON, "daemon_stale_after_s": 30}
    settings = make_settings(
        database_url,
        tmp_path_factory,
        **fast,
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
    repo = tmp_path_factory.mktemp("binary-source")
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    (repo / "README.md").write_text("# binary\n")
    # Text for git's and read_file's binary sniffing (the first 8 KiB), NUL after it.
    (repo / "late-nul.txt").write_bytes(b"line\n" * 2000 + b"tail\0end\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-q", "-m", "init")
    return repo


@pytest.fixture(scope="module")
async def workspace(client: GraphQLClient, admin: str, source_repo: Path) -> str:
    made = await client.ok(TEMPLATE, {"name": "binary", "source": str(source_repo)}, token=admin)
    template = made["createWorkspaceTemplate"]["workspaceTemplate"]["id"]
    data = await client.ok(WORKSPACE, {"template": template}, token=admin)
    return str(data["createWorkspace"]["workspace"]["id"])


@pytest.fixture(scope="module")
async def fake_model(client: GraphQLClient, admin: str, served_llm: FakeLlm) -> str:
    """A model on the fake OpenAI-compatible server: it streams what a test pushes."""
    provider = await client.ok(
        CREATE_PROVIDER,
        {
            "input": {
                "kind": "OPENAI_COMPATIBLE",
                "baseUrl": f"{served_llm.url}/v1",
                "apiKey": TEST_KEY,
                "displayName": "Fake compatible",
            }
        },
        token=admin,
    )
    provider_id = provider["createProvider"]["provider"]["id"]
    model = await client.ok(
        CREATE_MODEL,
        {"input": {"providerId": provider_id, "model": "gpt-fake", "contextLimit": 8000}},
        token=admin,
    )
    return str(model["createModelConfig"]["modelConfig"]["id"])


async def run_chat(
    client: GraphQLClient,
    live_server: str,
    token: str,
    text: str,
    *,
    workspace: str | None = None,
    model: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """A new chat's first turn, start to settled: its id and every chatEvents event."""
    made = await client.ok(CREATE, {"text": text, "ws": workspace, "model": model}, token=token)
    chat = str(made["createChat"]["chat"]["id"])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat}, field="chatEvents")
        events = await sub.until(settled)
    return chat, events


def tool_results(chat: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        part
        for message in chat["messages"]["nodes"]
        for part in message["parts"]
        if part["__typename"] == "ToolResultPart"
    ]


def assert_clean(value: Any) -> None:
    """Nothing a client reads holds NUL or a lone surrogate."""
    text = json.dumps(value, ensure_ascii=False)
    assert "\x00" not in text
    text.encode("utf-8")  # raises on a lone surrogate


async def stored_parts(chat: str) -> list[Any]:
    rows = await ChatMessage.filter(chat_id=chat_uuid(chat)).order_by("id")
    return [row.parts for row in rows]


async def test_a_command_printing_nul_completes_and_shows_the_replacement(
    client: GraphQLClient, live_server: str, admin: str, workspace: str
) -> None:
    text = tool_line("execute", {"command": "printf 'a\\0b'"})
    chat, events = await run_chat(client, live_server, admin, text, workspace=workspace)

    assert events[-1]["status"] == "WAITING", events
    shown = await read_chat(client, admin, chat)
    (result,) = tool_results(shown)
    assert not result["isError"], result
    assert f"a{REPLACEMENT}b" in json.dumps(result["result"], ensure_ascii=False)
    # The model's reply quotes the output; it is stored and shown the same way.
    assert [m["role"] for m in shown["messages"]["nodes"]] == [
        "USER",
        "ASSISTANT",
        "TOOL",
        "ASSISTANT",
    ]
    assert_clean(shown)
    assert_clean(await stored_parts(chat))


async def test_reading_a_file_with_nul_past_the_binary_sniff_completes(
    client: GraphQLClient, live_server: str, admin: str, workspace: str
) -> None:
    text = tool_line("read_file", {"path": "late-nul.txt", "offset": 2001})
    chat, events = await run_chat(client, live_server, admin, text, workspace=workspace)

    assert events[-1]["status"] == "WAITING", events
    shown = await read_chat(client, admin, chat)
    (result,) = tool_results(shown)
    assert not result["isError"], result
    assert f"tail{REPLACEMENT}end" in json.dumps(result["result"], ensure_ascii=False)
    assert_clean(shown)
    assert_clean(await stored_parts(chat))


async def test_a_tool_call_argument_with_nul_is_stored_with_the_replacement(
    client: GraphQLClient, live_server: str, admin: str, workspace: str
) -> None:
    # The model's JSON arguments carry the escape; decoded, the command holds a NUL.
    text = '/tool execute {"command": "echo a\\u0000b"}'
    chat, events = await run_chat(client, live_server, admin, text, workspace=workspace)

    assert events[-1]["status"] == "WAITING", events
    shown = await read_chat(client, admin, chat)
    calls = [
        part
        for message in shown["messages"]["nodes"]
        for part in message["parts"]
        if part["__typename"] == "ToolCallPart"
    ]
    assert calls[0]["args"] == {"command": f"echo a{REPLACEMENT}b"}
    live_calls = [
        e["part"]
        for e in events
        if typename(e, "PartDelta") and e["part"]["__typename"] == "ToolCallPart"
    ]
    assert [c["args"] for c in live_calls] == [calls[0]["args"]]
    assert len(tool_results(shown)) == 1
    assert_clean(shown)
    assert_clean(await stored_parts(chat))


async def test_a_git_diff_with_nul_shows_in_the_chat_diff(
    client: GraphQLClient, live_server: str, admin: str, workspace: str
) -> None:
    # Past git's 8000-byte binary sniff, so the diff is text with a NUL in it.
    text = tool_line("execute", {"command": "printf 'more\\0bytes\\n' >> late-nul.txt"})
    chat, events = await run_chat(client, live_server, admin, text, workspace=workspace)
    assert events[-1]["status"] == "WAITING", events

    async def diff_shown() -> str | None:
        data = await client.ok(DIFF, {"id": chat}, token=admin)
        diff = data["chat"]["diff"]
        shown = diff["unifiedDiff"] if diff["source"] == "LOCAL" else ""
        return shown if "late-nul.txt" in shown else None

    shown = await eventually(diff_shown)
    assert f"+more{REPLACEMENT}bytes" in shown
    assert "\x00" not in shown


async def test_a_provider_error_with_nul_fails_the_chat_with_its_error_shown(
    client: GraphQLClient, live_server: str, admin: str, fake_model: str, served_llm: FakeLlm
) -> None:
    served_llm.reset()
    served_llm.push(JsonReply(400, {"error": {"message": "bad\u0000request", "type": "x"}}))
    chat, events = await run_chat(client, live_server, admin, "fail please", model=fake_model)

    assert events[-1]["status"] == "ERROR", events
    (failed,) = [e for e in events if typename(e, "ChatFailed")]
    assert failed["error"]["kind"] == "CONFIG"
    assert f"bad{REPLACEMENT}request" in failed["error"]["detail"]
    shown = await read_chat(client, admin, chat)
    assert shown["status"] == "ERROR"
    assert shown["lastError"] == failed["error"]
    stored = await Chat.get(id=chat_uuid(chat))
    assert stored.last_error is not None
    assert stored.last_error["detail"] == failed["error"]["detail"]


async def test_a_model_streaming_nul_and_lone_surrogates_shows_the_same_text_live_and_stored(
    client: GraphQLClient, live_server: str, admin: str, fake_model: str, served_llm: FakeLlm
) -> None:
    served_llm.reset()
    served_llm.push(
        SseReply(
            openai_stream(
                reasoning=["thinking\u0000", " hard"],
                text=["a\u0000", "b\ud800", "c", "\udc00d"],
            )
        ),
        SseReply(openai_stream(text=["Nul bytes replaced"])),  # if the title asks this model
    )
    chat, events = await run_chat(client, live_server, admin, "say it", model=fake_model)

    assert events[-1]["status"] == "WAITING", events
    live: dict[int, str] = {}
    for event in events:
        if typename(event, "PartDelta"):
            live[event["partIndex"]] = live.get(event["partIndex"], "") + event["part"]["text"]
    created = [e["message"] for e in events if typename(e, "MessageCreated")]
    final = created[-1]
    assert final["role"] == "ASSISTANT"
    expected = [f"thinking{REPLACEMENT} hard", f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d"]
    assert [p["text"] for p in final["parts"]] == expected
    # The deltas a client concatenated are exactly the message that replaced them.
    assert [live[i] for i in sorted(live)] == expected
    shown = await read_chat(client, admin, chat)
    assert [p["text"] for p in shown["messages"]["nodes"][-1]["parts"]] == expected
    assert (await stored_parts(chat))[-1] == [
        {"type": "reasoning", "text": expected[0]},
        {"type": "text", "text": expected[1]},
    ]
