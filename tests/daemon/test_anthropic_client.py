"""AnthropicClient through the real anthropic SDK against the fake server."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator

import pytest

from daemon.providers import (
    Finish,
    ModelMessage,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    make_client,
)
from daemon.providers.anthropic_client import DEFAULT_MAX_TOKENS, AnthropicClient
from db.parts import FileReferencePart, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from db.vocabulary import ChatErrorKind
from tests.daemon.fake_llm import (
    TEST_KEY,
    FakeLlm,
    SseReply,
    StallReply,
    anthropic_error,
    anthropic_stream,
)
from tests.daemon.streams import collect, failure

EXECUTE = ToolSpec(
    "execute",
    "Run a shell command.",
    {"type": "object", "properties": {"command": {"type": "string"}}},
)


def request(text: str = "Hello", **kwargs: object) -> ModelRequest:
    return ModelRequest(
        model="claude-test",
        system="Be brief.",
        messages=[ModelMessage("user", [TextPart(text)])],
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(llm: FakeLlm) -> AsyncIterator[AnthropicClient]:
    c = AnthropicClient(api_key=TEST_KEY, base_url=llm.url, timeout=2.0)
    yield c
    await c.aclose()


async def test_text_and_thinking_stream_with_cache_usage(
    llm: FakeLlm, client: AnthropicClient
) -> None:
    llm.push(
        SseReply(
            anthropic_stream(
                ("thinking", ["Consider", " it"]),
                ("text", ["Hi", " there"]),
                input_tokens=12,
                output_tokens=7,
                cache_read=300,
                cache_write=40,
            )
        )
    )

    events = await collect(client, request(temperature=0.5))

    assert events == [
        ReasoningDelta("Consider"),
        ReasoningDelta(" it"),
        TextDelta("Hi"),
        TextDelta(" there"),
        Usage(input_tokens=12, output_tokens=7, cache_read_tokens=300, cache_write_tokens=40),
        Finish("stop"),
    ]
    sent = llm.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == TEST_KEY
    assert "authorization" not in sent.headers
    assert sent.headers["anthropic-version"]
    assert sent.body["stream"] is True
    assert sent.body["system"] == "Be brief."
    assert sent.body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert sent.body["cache_control"] == {"type": "ephemeral"}
    assert "temperature" not in sent.body
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]}
    ]


async def test_tool_use_is_assembled(llm: FakeLlm, client: AnthropicClient) -> None:
    llm.push(
        SseReply(
            anthropic_stream(
                ("text", ["Running it."]),
                ("tool_use", ("toolu_1", "execute", ['{"comm', 'and": "ls', ' -la"}'])),
                ("tool_use", ("toolu_2", "execute", [])),
                stop_reason="tool_use",
            )
        )
    )

    events = await collect(client, request(tools=[EXECUTE], max_output_tokens=1000))

    assert events == [
        TextDelta("Running it."),
        ToolCallDelta("toolu_1", "execute", '{"comm'),
        ToolCallDelta("toolu_1", "execute", 'and": "ls'),
        ToolCallDelta("toolu_1", "execute", ' -la"}'),
        ToolCall("toolu_1", "execute", {"command": "ls -la"}),
        ToolCall("toolu_2", "execute", {}),
        Usage(input_tokens=10, output_tokens=5),
        Finish("tool_calls"),
    ]
    body = llm.requests[0].body
    assert body["max_tokens"] == 1000
    assert body["tools"] == [
        {"name": "execute", "description": EXECUTE.description, "input_schema": EXECUTE.parameters}
    ]


async def test_tool_input_sent_whole_at_block_start(llm: FakeLlm, client: AnthropicClient) -> None:
    events = anthropic_stream(("tool_use", ("toolu_9", "execute", [])), stop_reason="tool_use")
    events[2][1]["content_block"]["input"] = {"command": "pwd"}  # a compatible server's way
    llm.push(SseReply(events))

    got = await collect(client, request(tools=[EXECUTE]))

    assert ToolCall("toolu_9", "execute", {"command": "pwd"}) in got


async def test_history_merges_tool_results_into_user_turn(
    llm: FakeLlm, client: AnthropicClient
) -> None:
    llm.push(SseReply(anthropic_stream(("text", ["ok"]))))
    req = ModelRequest(
        model="claude-test",
        system=None,
        messages=[
            ModelMessage("user", [TextPart("List files"), FileReferencePart("a.py", 1, 2, "x")]),
            ModelMessage(
                "assistant",
                [ReasoningPart("hmm"), ToolCallPart("toolu_1", "execute", {"command": "ls"})],
            ),
            ModelMessage("tool", [ToolResultPart("toolu_1", "execute", "a.py", is_error=False)]),
            ModelMessage("user", [TextPart("And now?")]),
        ],
    )

    await collect(client, req)

    body = llm.requests[0].body
    assert "system" not in body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "List files\n\n[file a.py:1-2]\n```\nx\n```"}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "execute", "input": {"command": "ls"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "a.py",
                    "is_error": False,
                },
                {"type": "text", "text": "And now?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("status", "type_", "kind", "retryable"),
    [
        (429, "rate_limit_error", ChatErrorKind.RATE_LIMIT, True),
        (529, "overloaded_error", ChatErrorKind.OVERLOADED, True),
        (500, "api_error", ChatErrorKind.GENERIC, True),
        (503, "api_error", ChatErrorKind.GENERIC, True),
        (504, "timeout_error", ChatErrorKind.GENERIC, True),
        (408, "timeout_error", ChatErrorKind.TIMEOUT, True),
        (400, "invalid_request_error", ChatErrorKind.CONFIG, False),
        (403, "permission_error", ChatErrorKind.AUTH, False),
        (404, "not_found_error", ChatErrorKind.CONFIG, False),
    ],
)
async def test_http_errors_are_classified(
    llm: FakeLlm,
    client: AnthropicClient,
    status: int,
    type_: str,
    kind: ChatErrorKind,
    retryable: bool,
) -> None:
    llm.push(anthropic_error(status, type_, f"{type_} happened"))

    events, err = await failure(client, request())

    assert events == []
    assert (err.kind, err.retryable, err.status_code, err.provider) == (
        kind,
        retryable,
        status,
        "anthropic",
    )
    assert err.message == f"{type_} happened"


async def test_bad_key_is_auth_and_never_leaks(llm: FakeLlm) -> None:
    wrong = "sk-ant-wrong-key-that-must-not-leak"
    client = AnthropicClient(api_key=wrong, base_url=llm.url)
    try:
        _, err = await failure(client, request())
    finally:
        await client.aclose()

    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.AUTH, False, 401)
    assert err.message == "invalid x-api-key: [REDACTED]"  # the body echoed the key
    rendered = "".join(traceback.format_exception(err))
    for text in (str(err), repr(err), err.message, err.detail or "", rendered, str(err.as_dict())):
        assert wrong not in text


async def test_error_event_inside_stream(llm: FakeLlm, client: AnthropicClient) -> None:
    events = anthropic_stream(("text", ["Hal", "f"]))[:5]
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    llm.push(SseReply([*events, ("error", overloaded)]))

    got, err = await failure(client, request())

    assert got == [TextDelta("Hal"), TextDelta("f")]
    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.OVERLOADED, True, None)
    assert err.message == "Overloaded"


async def test_stream_cut_in_the_middle_is_retryable(llm: FakeLlm, client: AnthropicClient) -> None:
    llm.push(SseReply(anthropic_stream(("text", ["one ", "two ", "three"])), cut_after=5))

    events, err = await failure(client, request())

    assert events == [TextDelta("one "), TextDelta("two ")]
    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.GENERIC, True, None)


async def test_stream_without_message_stop_is_retryable(
    llm: FakeLlm, client: AnthropicClient
) -> None:
    llm.push(SseReply(anthropic_stream(("text", ["partial"]))[:-1]))

    events, err = await failure(client, request())

    assert events == [TextDelta("partial")]
    assert (err.kind, err.retryable) == (ChatErrorKind.GENERIC, True)


async def test_refusal_is_content_filter_after_partial_output(
    llm: FakeLlm, client: AnthropicClient
) -> None:
    llm.push(SseReply(anthropic_stream(("text", ["I can"]), stop_reason="refusal")))

    events, err = await failure(client, request())

    assert events == [TextDelta("I can"), Usage(input_tokens=10, output_tokens=5)]
    assert (err.kind, err.retryable) == (ChatErrorKind.CONTENT_FILTER, False)


async def test_max_tokens_finishes_with_length(llm: FakeLlm, client: AnthropicClient) -> None:
    llm.push(SseReply(anthropic_stream(("text", ["cut"]), stop_reason="max_tokens")))

    events = await collect(client, request())

    assert events[-1] == Finish("length")


async def test_timeout_is_retryable(llm: FakeLlm) -> None:
    client = AnthropicClient(api_key=TEST_KEY, base_url=llm.url, timeout=0.1)
    llm.push(StallReply(0.4))
    try:
        _, err = await failure(client, request())
    finally:
        await client.aclose()

    assert (err.kind, err.retryable, err.status_code) == (ChatErrorKind.TIMEOUT, True, None)


async def test_silence_mid_stream_is_a_timeout(llm: FakeLlm) -> None:
    client = AnthropicClient(api_key=TEST_KEY, base_url=llm.url, timeout=0.1)
    llm.push(SseReply(anthropic_stream(("text", ["a", "b"])), delay=0.3))
    try:
        _, err = await failure(client, request())
    finally:
        await client.aclose()

    assert (err.kind, err.retryable) == (ChatErrorKind.TIMEOUT, True)


def test_missing_key_is_refused_before_any_request() -> None:
    with pytest.raises(ProviderError) as info:
        make_client("anthropic", api_key=None, base_url=None)
    assert (info.value.kind, info.value.retryable) == (ChatErrorKind.MISSING_KEY, False)
