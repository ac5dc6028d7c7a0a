"""ScriptedClient: the offline client daemon tests drive through its directives."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from daemon.providers import (
    Finish,
    ModelMessage,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    complete_text,
    make_client,
)
from daemon.providers.scripted import ScriptedClient
from db.parts import TextPart, ToolCallPart, ToolResultPart
from db.vocabulary import ChatErrorKind
from tests.daemon.streams import collect, failure


def ask(*messages: ModelMessage, system: str | None = None) -> ModelRequest:
    return ModelRequest(model="scripted", system=system, messages=list(messages))


def user(text: str) -> ModelMessage:
    return ModelMessage("user", [TextPart(text)])


def unique(text: str) -> str:
    """Attempt counters are per request content: keep tests independent."""
    return f"{text}\n{uuid.uuid4().hex}"


async def test_echoes_word_by_word_with_usage() -> None:
    events = await collect(ScriptedClient(), ask(user("fix the  login bug"), system="Be kind."))

    assert events == [
        TextDelta("You "),
        TextDelta("said: "),
        TextDelta("fix "),
        TextDelta("the  "),
        TextDelta("login "),
        TextDelta("bug"),
        Usage(input_tokens=6, output_tokens=6),
        Finish("stop"),
    ]


async def test_factory_and_complete_text() -> None:
    client = make_client("scripted", api_key=None, base_url=None)

    text, usage = await complete_text(client, ask(user("/reply Fix login redirect")))

    assert client.provider == "scripted"
    assert text == "Fix login redirect"
    assert usage == Usage(input_tokens=4, output_tokens=3)  # directives count


async def test_tool_call_then_summary_of_result() -> None:
    client = ScriptedClient()
    first = ask(user('Look around\n/tool execute {"command": "ls"}\n/tool read_file'))

    events = await collect(client, first)

    assert events == [
        ToolCallDelta("call_1", "execute", '{"command": "ls"}'),
        ToolCall("call_1", "execute", {"command": "ls"}),
        ToolCallDelta("call_2", "read_file", "{}"),
        ToolCall("call_2", "read_file", {}),
        Usage(input_tokens=8, output_tokens=2),
        Finish("tool_calls"),
    ]

    second = ask(
        *first.messages,
        ModelMessage(
            "assistant",
            [
                ToolCallPart("call_1", "execute", {"command": "ls"}),
                ToolCallPart("call_2", "read_file", {}),
            ],
        ),
        ModelMessage(
            "tool",
            [
                ToolResultPart("call_1", "execute", {"output": "a.txt"}),
                ToolResultPart("call_2", "read_file", "no path", is_error=True),
            ],
        ),
    )
    text, _ = await complete_text(client, second)

    assert text == 'Tool execute returned: {"output": "a.txt"}. Tool read_file failed: no path.'


async def test_tool_ids_continue_across_the_conversation() -> None:
    history = [
        user("/tool a"),
        ModelMessage("assistant", [ToolCallPart("call_1", "a", {})]),
        ModelMessage("tool", [ToolResultPart("call_1", "a", "ok")]),
        ModelMessage("assistant", [TextPart("Tool a returned: ok.")]),
        user("/reply Again.\n/tool b {}"),
    ]

    events = await collect(ScriptedClient(), ask(*history))

    assert events[0] == TextDelta("Again.")
    assert ToolCall("call_2", "b", {}) in events
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize(
    ("kind", "retryable", "status"),
    [
        ("overloaded", True, 529),
        ("rate_limit", True, 429),
        ("timeout", True, 408),
        ("generic", True, 500),
        ("auth", False, 401),
        ("config", False, 400),
        ("content_filter", False, 400),
        ("missing_key", False, None),
    ],
)
async def test_fail_raises_the_kind(kind: str, retryable: bool, status: int | None) -> None:
    with pytest.raises(ProviderError) as info:
        await collect(ScriptedClient(), ask(user(unique(f"/fail {kind}"))))

    err = info.value
    assert (err.kind, err.retryable, err.status_code, err.provider) == (
        ChatErrorKind(kind),
        retryable,
        status,
        "scripted",
    )


async def test_fail_n_times_then_answer() -> None:
    req = ask(user(unique("hello\n/fail overloaded 2")))

    for attempt in (1, 2):
        with pytest.raises(ProviderError, match=f"attempt {attempt}"):
            # A new client per attempt, as a daemon might build: the count still holds.
            await collect(ScriptedClient(), req)
    events = await collect(ScriptedClient(), req)

    assert events[0] == TextDelta("You ")
    assert events[-1] == Finish("stop")


async def test_cut_streams_some_words_then_breaks() -> None:
    req = ask(user(unique("/reply one two three four\n/cut 2 1")))

    events, err = await failure(ScriptedClient(), req)

    assert events == [TextDelta("one "), TextDelta("two ")]
    assert (err.kind, err.retryable) == (ChatErrorKind.GENERIC, True)
    text, _ = await complete_text(ScriptedClient(), req)  # second attempt passes
    assert text == "one two three four"


async def test_think_streams_reasoning_first() -> None:
    events = await collect(ScriptedClient(), ask(user("/think Hmm, easy.\n/reply Done.")))

    assert events[:3] == [ReasoningDelta("Hmm, "), ReasoningDelta("easy."), TextDelta("Done.")]
    assert events[3] == Usage(input_tokens=5, output_tokens=3)


async def test_slow_paces_words_and_can_be_interrupted() -> None:
    client = ScriptedClient()
    start = time.monotonic()
    text, _ = await complete_text(client, ask(user("/slow 30\n/reply a b c")))
    assert text == "a b c"
    assert time.monotonic() - start >= 0.09

    received: list[StreamEvent] = []

    async def consume() -> None:
        async for event in client.stream(ask(user("/slow 200\n/reply " + "word " * 50))):
            received.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= len(received) <= 4


async def test_bad_directives_are_config_errors() -> None:
    for text in ("/fail nonsense", "/tool x [1, 2]", "/tool x {not json"):
        with pytest.raises(ProviderError) as info:
            await collect(ScriptedClient(), ask(user(text)))
        assert (info.value.kind, info.value.retryable) == (ChatErrorKind.CONFIG, False)


async def test_empty_conversation_says_ok() -> None:
    text, usage = await complete_text(ScriptedClient(), ask())
    assert (text, usage) == ("OK", Usage(input_tokens=0, output_tokens=1))
