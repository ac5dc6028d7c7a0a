"""OpenAIClient through the real openai SDK against the fake server."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator

import pytest

from daemon.providers import (
    Finish,
    ModelMessage,
    ModelRequest,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    complete_text,
    make_client,
)
from daemon.providers.openai_client import OpenAIClient
from db.parts import TextPart, ToolCallPart, ToolResultPart
from db.vocabulary import ChatErrorKind
from tests.daemon.fake_llm import (
    DONE,
    TEST_KEY,
    FakeLlm,
    JsonReply,
    SseReply,
    StallReply,
    openai_error,
    openai_stream,
    openai_usage,
)
from tests.daemon.streams import collect, failure

READ_FILE = ToolSpec(
    "read_file",
    "Read a file from the workspace.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def request(text: str = "Hello", **kwargs: object) -> ModelRequest:
    return ModelRequest(
        model="gpt-test",
        system="You are terse.",
        messages=[ModelMessage("user", [TextPart(text)])],
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(llm: FakeLlm) -> AsyncIterator[OpenAIClient]:
    c = OpenAIClient(api_key=TEST_KEY, base_url=f"{llm.url}/v1", timeout=2.0)
    yield c
    await c.aclose()


async def test_text_streams_in_order_with_usage(llm: FakeLlm, client: OpenAIClient) -> None:
    usage = openai_usage(120, 9, cached=100, reasoning=4)
    llm.push(SseReply(openai_stream(text=["Hel", "lo", " there"], usage=usage)))

    events = await collect(client, request(max_output_tokens=256, temperature=0.2))

    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" there"),
        Usage(input_tokens=20, output_tokens=9, reasoning_tokens=4, cache_read_tokens=100),
        Finish("stop"),
    ]
    sent = llm.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["max_completion_tokens"] == 256
    assert "max_tokens" not in sent.body
    assert sent.body["temperature"] == 0.2
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello"},
    ]
    assert "tools" not in sent.body


async def test_tool_calls_are_assembled(llm: FakeLlm, client: OpenAIClient) -> None:
    llm.push(
        SseReply(
            openai_stream(
                text=["Let me look."],
                tool_calls=[
                    ("call_a", "read_file", ['{"pa', 'th": "/tm', 'p/a.txt"}']),
                    ("call_b", "read_file", ['{"path": "/tmp/b.txt"}']),
                ],
                finish="tool_calls",
                usage=openai_usage(50, 20),
            )
        )
    )

    events = await collect(client, request(tools=[READ_FILE]))

    assert events == [
        TextDelta("Let me look."),
        ToolCallDelta("call_a", "read_file", '{"pa'),
        ToolCallDelta("call_a", "read_file", 'th": "/tm'),
        ToolCallDelta("call_a", "read_file", 'p/a.txt"}'),
        ToolCallDelta("call_b", "read_file", '{"path": "/tmp/b.txt"}'),
        ToolCall("call_a", "read_file", {"path": "/tmp/a.txt"}),
        ToolCall("call_b", "read_file", {"path": "/tmp/b.txt"}),
        Usage(input_tokens=50, output_tokens=20),
        Finish("tool_calls"),
    ]
    assert llm.requests[0].body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": READ_FILE.description,
                "parameters": READ_FILE.parameters,
            },
        }
    ]


async def test_history_with_tool_round_trip_is_sent(llm: FakeLlm, client: OpenAIClient) -> None:
    llm.push(SseReply(openai_stream(text=["done"])))
    req = ModelRequest(
        model="gpt-test",
        system=None,
        messages=[
            ModelMessage("user", [TextPart("Read a.txt")]),
            ModelMessage(
                "assistant",
                [TextPart("Reading."), ToolCallPart("call_1", "read_file", {"path": "a.txt"})],
            ),
            ModelMessage(
                "tool",
                [
                    ToolResultPart("call_1", "read_file", {"content": "hi"}),
                    ToolResultPart("call_2", "execute", "boom", is_error=True),
                ],
            ),
        ],
    )

    await collect(client, req)

    assert llm.requests[0].body["messages"] == [
        {"role": "user", "content": "Read a.txt"},
        {
            "role": "assistant",
            "content": "Reading.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"content": "hi"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: boom"},
    ]


async def test_reasoning_from_compatible_servers(llm: FakeLlm) -> None:
    client = make_client("openai-compatible", api_key=None, base_url=f"{llm.url}/v1")
    llm.keys.add("")
    llm.push(SseReply(openai_stream(reasoning=["Think", "ing"], text=["Answer"])))
    try:
        events = [e async for e in client.stream(request(max_output_tokens=64))]
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # not part of LlmClient

    assert events == [
        ReasoningDelta("Think"),
        ReasoningDelta("ing"),
        TextDelta("Answer"),
        Finish("stop"),
    ]
    sent = llm.requests[0]
    assert "authorization" not in sent.headers
    assert sent.body["max_tokens"] == 64
    assert "max_completion_tokens" not in sent.body


async def test_complete_text(llm: FakeLlm, client: OpenAIClient) -> None:
    llm.push(SseReply(openai_stream(text=["Fix ", "login ", "bug"], usage=openai_usage(30, 3))))

    text, usage = await complete_text(client, request())

    assert text == "Fix login bug"
    assert usage == Usage(input_tokens=30, output_tokens=3)


@pytest.mark.parametrize(
    ("reply", "kind", "retryable", "status"),
    [
        (openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded"),
         ChatErrorKind.RATE_LIMIT, True, 429),
        (openai_error(429, "You exceeded your current quota", "insufficient_quota",
                      "insufficient_quota"), ChatErrorKind.RATE_LIMIT, False, 429),
        (openai_error(500, "The server had an error", "server_error"),
         ChatErrorKind.GENERIC, True, 500),
        (openai_error(503, "The engine is currently overloaded", "server_error"),
         ChatErrorKind.OVERLOADED, True, 503),
        (JsonReply(529, {"error": {"message": "busy", "type": "overloaded_error"}}),
         ChatErrorKind.OVERLOADED, True, 529),
        (openai_error(400, "Unknown parameter", "invalid_request_error"),
         ChatErrorKind.CONFIG, False, 400),
        (openai_error(400, "Flagged by safety system", "invalid_request_error",
                      "content_policy_violation"), ChatErrorKind.CONTENT_FILTER, False, 400),
        (openai_error(404, "The model does not exist", "invalid_request_error",
                      "model_not_found"), ChatErrorKind.CONFIG, False, 404),
        (openai_error(403, "Project lacks access", "invalid_request_error"),
         ChatErrorKind.AUTH, False, 403),
    ],
)  # fmt: skip
async def test_http_errors_are_classified(
    llm: FakeLlm,
    client: OpenAIClient,
    reply: JsonReply,
    kind: ChatErrorKind,
    retryable: bool,
    status: int,
) -> None:
    llm.push(reply)

    events, err = await failure(client, request())

    assert events == []
    assert (err.kind, err.retryable, err.status_code, err.provider) == (
        kind,
        retryable,
        status,
        "openai",
    )
    assert err.message == reply.body["error"]["message"]


async def test_bad_key_is_auth_and_never_leaks(llm: FakeLlm) -> None:
    wrong = "sk-wrong-key-that-must-not-leak-42"
    client = OpenAIClient(api_key=wrong, base_url=f"{llm.url}/v1")
    try:
        _, err = await failure(client, request())
    finally:
        await client.aclose()

    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.AUTH, False, 401)
    assert err.message == "Incorrect API key provided: [REDACTED]."  # the body echoed the key
    rendered = "".join(traceback.format_exception(err))
    for text in (str(err), repr(err), err.message, err.detail or "", rendered, str(err.as_dict())):
        assert wrong not in text
    assert err.__cause__ is None


async def test_stream_cut_in_the_middle_is_retryable(llm: FakeLlm, client: OpenAIClient) -> None:
    llm.push(SseReply(openai_stream(text=["one ", "two ", "three ", "four"]), cut_after=3))

    events, err = await failure(client, request())

    assert events == [TextDelta("one "), TextDelta("two ")]
    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.GENERIC, True, None)


async def test_stream_without_finish_is_retryable(llm: FakeLlm, client: OpenAIClient) -> None:
    chunks = openai_stream(text=["partial"], done=False)[:-1]  # no finish, no [DONE]
    llm.push(SseReply([*chunks, (None, DONE)]))

    events, err = await failure(client, request())

    assert events == [TextDelta("partial")]
    assert (err.kind, err.retryable) == (ChatErrorKind.GENERIC, True)


async def test_error_event_inside_stream(llm: FakeLlm, client: OpenAIClient) -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    llm.push(SseReply([*openai_stream(text=["a"])[:2], (None, error)]))

    events, err = await failure(client, request())

    assert events == [TextDelta("a")]
    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.GENERIC, True, None)


async def test_content_filter_keeps_partial_output_and_usage(
    llm: FakeLlm, client: OpenAIClient
) -> None:
    stream = openai_stream(text=["Once"], finish="content_filter", usage=openai_usage(5, 1))
    llm.push(SseReply(stream))

    events, err = await failure(client, request())

    assert events == [TextDelta("Once"), Usage(input_tokens=5, output_tokens=1)]
    assert (err.kind, err.retryable) == (ChatErrorKind.CONTENT_FILTER, False)


async def test_timeout_is_retryable(llm: FakeLlm) -> None:
    client = OpenAIClient(api_key=TEST_KEY, base_url=f"{llm.url}/v1", timeout=0.1)
    llm.push(StallReply(0.4))
    try:
        _, err = await failure(client, request())
    finally:
        await client.aclose()

    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.TIMEOUT, True, None)


async def test_connection_refused_is_retryable() -> None:
    client = OpenAIClient(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", timeout=1.0)
    try:
        _, err = await failure(client, request())
    finally:
        await client.aclose()

    assert (err.kind, err.retryable) == (ChatErrorKind.GENERIC, True)


async def test_cancelling_mid_stream_is_not_an_error(llm: FakeLlm, client: OpenAIClient) -> None:
    llm.push(SseReply(openai_stream(text=[f"w{i} " for i in range(20)]), delay=0.05))
    received: list[StreamEvent] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for event in client.stream(request()):
            received.append(event)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= len(received) < 20
