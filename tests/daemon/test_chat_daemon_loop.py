"""The agent loop end to end: tools, the queue, providers and what a step costs.

Real uvicorn, the daemon in its lifespan, a real WebSocket; a test-only ``echo``
tool; a fake OpenAI-compatible server (``served_llm``) for the bad-key case.
"""

from __future__ import annotations

from typing import Any

from db.models import Chat, ChatMessage
from db.vocabulary import MessageRole
from tests.daemon.fake_llm import FakeLlm
from tests.daemon.live import (
    CHAT_EVENTS,
    SEND,
    GraphQLSocket,
    chat_settled,
    chat_uuid,
    create_chat,
    is_message,
    is_status,
    messages_of,
    nonce,
    read_chat,
    settled,
    stored_text,
    text_of,
    typename,
)
from tests.daemon.live_app import admin, app, client, token  # noqa: F401 (fixtures)
from tests.harness import GraphQLClient

# app, client, admin and token: this module's own running app (tests.daemon.live_app).


# -- 5. a bad key -----------------------------------------------------------------------

CREATE_PROVIDER = """
mutation($input: CreateProviderInput!) { createProvider(input: $input) { provider { id } } }"""
CREATE_MODEL = """
mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { modelConfig { id isDefault } }
}"""
# Not shaped like a key (no sk- prefix): only redacting the key in use can hide it.
WRONG_KEY = "Wrong-Provider-Key-7f3a9c2e51d4"


async def test_a_bad_key_fails_the_chat_with_auth_and_never_leaks_it(
    live_server: str, client: GraphQLClient, admin: str, served_llm: FakeLlm
) -> None:
    served_llm.reset()
    provider = await client.ok(
        CREATE_PROVIDER,
        {
            "input": {
                "kind": "OPENAI_COMPATIBLE",
                "baseUrl": f"{served_llm.url}/v1",
                "apiKey": WRONG_KEY,
                "displayName": "Fake compatible",
            }
        },
        token=admin,
    )
    model = await client.ok(
        CREATE_MODEL,
        {
            "input": {
                "providerId": provider["createProvider"]["provider"]["id"],
                "model": "gpt-fake",
                "contextLimit": 8000,
            }
        },
        token=admin,
    )
    model_id = model["createModelConfig"]["modelConfig"]["id"]
    assert model["createModelConfig"]["modelConfig"]["isDefault"] is False

    responses: list[str] = []
    async with GraphQLSocket.open(live_server, admin) as socket:
        created = await client(
            "mutation($text: String!, $model: ID) { createChat(input: "
            "{content: [{text: $text}], modelConfigId: $model}) { chat { id status } } }",
            {"text": "hello over a bad key", "model": model_id},
            token=admin,
        )
        assert "errors" not in created, created
        responses.append(str(created))
        chat = created["data"]["createChat"]["chat"]
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await sub.until(settled)
        frames = socket.frames

    assert is_status(events[-1], "ERROR"), events
    assert not [e for e in events if typename(e, "RetryScheduled")]
    failed = [e for e in events if typename(e, "ChatFailed")]
    assert len(failed) == 1
    assert failed[0]["error"]["kind"] == "AUTH"
    assert failed[0]["error"]["retryable"] is False
    assert failed[0]["error"]["statusCode"] == 401
    response = await client.post(
        "query($id: ID!) { chat(id: $id) { status lastError { kind message detail provider "
        "retryable statusCode } } }",
        {"id": chat["id"]},
        token=admin,
    )
    responses.append(response.text)
    state = response.json()["data"]["chat"]
    assert state["status"] == "ERROR"
    error = state["lastError"]
    assert (error["kind"], error["retryable"], error["statusCode"]) == ("AUTH", False, 401)
    # The provider echoed the key back; what reaches people has it redacted.
    assert "[REDACTED]" in error["message"]
    assert served_llm.requests, "the provider was called"
    assert served_llm.requests[0].headers["authorization"] == f"Bearer {WRONG_KEY}"
    stored = await Chat.get(id=chat_uuid(chat["id"]))
    for text in [*frames, *responses, str(stored.last_error)]:
        assert WRONG_KEY not in text
    assert not await ChatMessage.filter(
        chat_id=chat_uuid(chat["id"]), role=MessageRole.ASSISTANT
    ).exists()


# -- 9. a tool call, end to end ---------------------------------------------------------


async def test_the_loop_runs_a_tool_call_end_to_end(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f'/tool echo {{"x": 1, "n": "{nonce()}"}}')
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        events = await sub.until(lambda e: is_status(e, "WAITING"))

    messages = [e["message"] for e in events if typename(e, "MessageCreated")]
    assert [m["role"] for m in messages] == ["USER", "ASSISTANT", "TOOL", "ASSISTANT"]
    args = {"x": 1, "n": messages[0]["parts"][0]["text"].split('"n": "')[1][:8]}
    call = messages[1]["parts"][-1]
    assert call == {
        "__typename": "ToolCallPart",
        "toolCallId": "call_1",
        "toolName": "echo",
        "args": args,
    }
    assert messages[2]["parts"] == [
        {
            "__typename": "ToolResultPart",
            "toolCallId": "call_1",
            "toolName": "echo",
            "result": {"echoed": args},
            "isError": False,
        }
    ]
    final = text_of(messages[3]["parts"])
    assert final.startswith("Tool echo returned:")
    assert args["n"] in final
    assert messages[1]["usage"]["outputTokens"] == 1  # the call
    assert messages[2]["usage"] is None  # tool messages carry no usage
    state = await read_chat(client, token, chat["id"])
    assert [m["role"] for m in state["messages"]["nodes"]] == [
        "USER",
        "ASSISTANT",
        "TOOL",
        "ASSISTANT",
    ]


# -- 10. the queue head runs next -------------------------------------------------------


async def test_a_queued_message_is_promoted_and_runs_next(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    second = f"/reply second answer {nonce()}"
    async with GraphQLSocket.open(live_server, token) as socket:
        chat = await create_chat(client, token, f"/slow 40\nthe first question {nonce()}")
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))  # RUNNING now
        sent = await client.ok(SEND, {"id": chat["id"], "text": second}, token=token)
        assert sent["sendMessage"]["queued"] is True
        assert sent["sendMessage"]["message"] is None
        replies = 0

        def second_reply_settled(event: dict[str, Any]) -> bool:
            nonlocal replies
            replies += is_message(event, "ASSISTANT")
            return replies == 2 and is_status(event, "WAITING")

        await sub.until(second_reply_settled)
        events = sub.received

    queue_sizes = [len(e["queuedMessages"]) for e in events if typename(e, "QueueUpdated")]
    assert 1 in queue_sizes
    assert queue_sizes[-1] == 0
    created = [e["message"] for e in events if typename(e, "MessageCreated")]
    assert [m["role"] for m in created] == ["USER", "ASSISTANT", "USER", "ASSISTANT"]
    assert text_of(created[2]["parts"]) == second
    assert text_of(created[3]["parts"]) == second.removeprefix("/reply ")
    # Straight from the first reply to the next turn: no WAITING in between.
    first_reply = next(i for i, e in enumerate(events) if is_message(e, "ASSISTANT"))
    between = [e["status"] for e in events[first_reply:-1] if typename(e, "StatusChanged")]
    assert "WAITING" not in between
    assert "PENDING" in between
    state = await read_chat(client, token, chat["id"])
    assert state["queuedMessages"] == []
    assert state["status"] == "WAITING"


async def test_send_with_interrupt_runs_the_new_message_next(
    live_server: str, client: GraphQLClient, token: str
) -> None:
    """An interrupted turn never reaches finish(); its queue head must still run."""
    second = f"/reply interrupting answer {nonce()}"
    chat = await create_chat(client, token, f"/slow 200\n/reply a b c d e f g h {nonce()}")
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(CHAT_EVENTS, {"id": chat["id"]}, field="chatEvents")
        await sub.until(lambda e: typename(e, "PartDelta"))
        sent = await client.ok(
            SEND, {"id": chat["id"], "text": second, "busy": "INTERRUPT"}, token=token
        )
        assert sent["sendMessage"]["queued"] is True

        def answered(event: dict[str, Any]) -> bool:
            return is_message(event, "ASSISTANT") and text_of(
                event["message"]["parts"]
            ) == second.removeprefix("/reply ")

        await sub.until(answered, timeout=2)
    rows = await messages_of(chat_uuid(chat["id"]), MessageRole.USER)
    assert [stored_text(r.parts) for r in rows][-1] == second


# -- usage and cost ---------------------------------------------------------------------


async def test_each_step_records_usage_and_cost_from_the_model_prices(
    live_server: str, client: GraphQLClient, admin: str, token: str
) -> None:
    providers = await client.ok("{ providers { id kind } }", token=admin)
    scripted = next(p["id"] for p in providers["providers"] if p["kind"] == "SCRIPTED")
    made = await client.ok(
        CREATE_MODEL,
        {
            "input": {
                "providerId": scripted,
                "model": "scripted-priced",
                "contextLimit": 32000,
                "inputPricePerMillionTokens": 3.0,
                "outputPricePerMillionTokens": 15.0,
            }
        },
        token=admin,
    )
    model_id = made["createModelConfig"]["modelConfig"]["id"]
    chat = await create_chat(client, token, f'/tool echo {{"k": "{nonce()}"}}', model_id)
    chat_id = chat_uuid(chat["id"])
    await chat_settled(chat_id)
    steps = await messages_of(chat_id, MessageRole.ASSISTANT)
    assert len(steps) == 2
    for step in steps:
        assert step.input_tokens
        assert step.output_tokens
        expected = (step.input_tokens * 3_000_000 + step.output_tokens * 15_000_000 + 500_000) // (
            1_000_000
        )
        assert step.total_cost_micros == expected > 0
        assert step.runtime_ms is not None
        assert step.runtime_ms >= 0
        assert str(step.model_config_id) == str((await Chat.get(id=chat_id)).model_config_id)
    state = await read_chat(client, token, chat["id"])
    costs = [m["costMicros"] for m in state["messages"]["nodes"] if m["role"] == "ASSISTANT"]
    assert costs == [s.total_cost_micros for s in steps]
