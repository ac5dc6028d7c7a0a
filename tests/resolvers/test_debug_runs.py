"""Reading debug runs: newest first in pages of at most 100, their steps decoded,
and a run by id only for its chat's owner or an admin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import debug_runs
from db.costing import Usage
from db.models import Chat, DebugRunKind, DebugStatus, User
from resolvers import global_id
from tests.harness import GraphQLClient, counted_queries, new_person

RUN_FIELDS = """
id kind status model provider startedAt finishedAt durationMs costMicros tokenSummary
usage { inputTokens outputTokens cacheReadTokens }
chat { id }
steps {
  index operation status attempts durationMs
  attemptDetails { number status error { kind message } }
  usage { inputTokens outputTokens }
  request {
    model options
    messages { role parts { __typename ... on TextPart { text } } }
    tools { name description inputSchema }
  }
  response {
    finishReason
    parts { __typename ... on TextPart { text } }
    toolCalls { toolCallId toolName args }
    usage { outputTokens }
  }
  error { kind }
}"""
CHAT_RUNS = (
    """
query($id: ID!, $first: Int, $after: String) {
  chat(id: $id) {
    debugRuns(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { """
    + RUN_FIELDS
    + """ } }
    }
  }
}"""
)
NODE = "query($id: ID!) { node(id: $id) { __typename ... on DebugRun { id kind chat { id } } } }"
AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def admin_first(admin_token: str) -> str:
    """The module's first account is the admin; the people made here come after."""
    return admin_token


async def chat_of(user: User) -> Chat:
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id, owner_id=user.id, root_id=chat_id, title="Runs", updated_at=AT
    )


async def recorded_run(chat: Chat, started: datetime, *, steps: int = 1) -> uuid.UUID:
    target = await debug_runs.target(chat.id)
    assert target is not None
    run_id = uuid.uuid4()
    await debug_runs.open_run(
        debug_runs.NewRun(
            id=run_id,
            target=target,
            kind=DebugRunKind.CHAT_TURN,
            provider="scripted",
            model="scripted-model",
            model_config_id=None,
            worker_id=None,
            started_at=started,
        )
    )
    usage = Usage(input_tokens=2, output_tokens=5, cache_read_tokens=1)
    total: Usage | None = None
    for index in range(steps):
        total = Usage(
            input_tokens=2 * (index + 1), output_tokens=5 * (index + 1), cache_read_tokens=index + 1
        )
        step = debug_runs.StepRecord(
            index=index,
            operation="stream",
            status=DebugStatus.COMPLETED,
            attempts=[
                {
                    "number": 1,
                    "status": "ERROR",
                    "error": {"kind": "overloaded", "message": "busy", "retryable": True},
                },
                {"number": 2, "status": "COMPLETED", "error": None},
            ],
            started_at=started,
            duration_ms=12,
            usage=usage,
            request={
                "model": "scripted-model",
                "messages": [
                    {"role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "parts": [{"type": "text", "text": "hi"}]},
                ],
                "tools": [
                    {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}
                ],
                "options": {"maxOutputTokens": 100, "temperature": None},
            },
            response={
                "parts": [{"type": "text", "text": "hello"}],
                "toolCalls": [
                    {"type": "tool-call", "toolCallId": "call_1", "toolName": "echo", "args": {}}
                ],
                "finishReason": "tool_calls",
                "usage": debug_runs.usage_json(usage),
            },
            error=None,
        )
        await debug_runs.write_step(run_id, step, total, 7 * (index + 1))
    await debug_runs.close_run(
        run_id, DebugStatus.COMPLETED, started + timedelta(milliseconds=1500), total, 7 * steps
    )
    return run_id


def run_gid(run_id: uuid.UUID) -> str:
    return global_id.encode("DebugRun", run_id)


async def test_a_run_reads_back_with_its_steps_decoded(gql: GraphQLClient) -> None:
    person = await new_person("reader")
    chat = await chat_of(person.user)
    run_id = await recorded_run(chat, AT, steps=2)

    data = await gql.ok(CHAT_RUNS, {"id": global_id.encode("Chat", chat.id)}, token=person.token)
    [edge] = data["chat"]["debugRuns"]["edges"]
    run: dict[str, Any] = edge["node"]
    assert run["id"] == run_gid(run_id)
    assert (run["kind"], run["status"], run["provider"]) == ("CHAT_TURN", "COMPLETED", "scripted")
    assert run["durationMs"] == 1500
    assert run["costMicros"] == 14
    assert run["usage"] == {"inputTokens": 4, "outputTokens": 10, "cacheReadTokens": 2}
    assert run["tokenSummary"] == "6→10 tok"  # prompt (cached included) → output
    assert run["chat"]["id"] == global_id.encode("Chat", chat.id)
    first, second = run["steps"]
    assert [first["index"], second["index"]] == [0, 1]
    assert first["attempts"] == 2
    assert [a["status"] for a in first["attemptDetails"]] == ["ERROR", "COMPLETED"]
    assert first["attemptDetails"][0]["error"] == {"kind": "OVERLOADED", "message": "busy"}
    assert [m["role"] for m in first["request"]["messages"]] == ["SYSTEM", "USER"]
    assert first["request"]["messages"][1]["parts"] == [{"__typename": "TextPart", "text": "hi"}]
    assert first["request"]["tools"] == [
        {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}
    ]
    assert first["request"]["options"]["maxOutputTokens"] == 100
    assert first["response"]["finishReason"] == "tool_calls"
    assert first["response"]["toolCalls"] == [
        {"toolCallId": "call_1", "toolName": "echo", "args": {}}
    ]
    assert first["error"] is None


async def test_runs_come_newest_first_in_pages_of_at_most_100(gql: GraphQLClient) -> None:
    person = await new_person("pager")
    chat = await chat_of(person.user)
    ids = [await recorded_run(chat, AT + timedelta(seconds=i), steps=1) for i in range(103)]
    gid = global_id.encode("Chat", chat.id)

    with counted_queries() as sent:
        data = await gql.ok(CHAT_RUNS, {"id": gid, "first": 500}, token=person.token)
    page = data["chat"]["debugRuns"]
    assert len(page["edges"]) == 100
    assert [e["node"]["id"] for e in page["edges"]] == [run_gid(i) for i in reversed(ids[3:])]
    assert page["pageInfo"]["hasNextPage"] is True
    # The page's steps come in one query, not one per run.
    assert len([q for q in sent if "chat_debug_steps" in q]) == 1

    after = {"id": gid, "first": 50, "after": page["pageInfo"]["endCursor"]}
    rest = (await gql.ok(CHAT_RUNS, after, token=person.token))["chat"]["debugRuns"]
    assert [e["node"]["id"] for e in rest["edges"]] == [run_gid(i) for i in reversed(ids[:3])]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_a_run_by_id_is_its_owners_or_an_admins(gql: GraphQLClient, admin_token: str) -> None:
    owner, stranger = await new_person("mine"), await new_person("snoop")
    chat = await chat_of(owner.user)
    gid = run_gid(await recorded_run(chat, AT))

    mine = await gql.ok(NODE, {"id": gid}, token=owner.token)
    assert mine["node"]["id"] == gid
    assert (await gql.ok(NODE, {"id": gid}, token=stranger.token))["node"] is None
    admin = await gql.ok(NODE, {"id": gid}, token=admin_token)
    assert admin["node"]["chat"]["id"] == global_id.encode("Chat", chat.id)
    # Someone else's chat (and so its runs) does not exist for a stranger.
    query = {"id": global_id.encode("Chat", chat.id)}
    assert (await gql.ok(CHAT_RUNS, query, token=stranger.token))["chat"] is None
