"""The gateway through the real ``openai`` and ``anthropic`` SDKs, over a real
uvicorn, against the fake provider: what a coding client pointed at agentgql sees,
and what the log and the ledger then hold."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.applications import Starlette

from db.models import (
    AiRequestLog,
    CostChatDay,
    CostModelDay,
    ModelConfig,
    Provider,
    SpendCounter,
    User,
)
from db.vocabulary import NIL_UUID
from tests.daemon.fake_llm import (
    TEST_KEY,
    FakeLlm,
    JsonReply,
    SseReply,
    StallReply,
    anthropic_error,
    anthropic_stream,
    openai_error,
    openai_stream,
    openai_usage,
)
from tests.gateway.conftest import Models

pytestmark = pytest.mark.usefixtures("models")


def oai(live_server: str, token: str, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{live_server}/v1", api_key=token, max_retries=0, **kw)


def claude(live_server: str, token: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=live_server, api_key=token, max_retries=0)


async def last_log(user: str = "admin") -> AiRequestLog:
    row = await AiRequestLog.filter(user__username=user).order_by("-id").first()
    assert row is not None
    return row


async def logged_after(before: int, within: float = 5.0) -> AiRequestLog:
    """The first row written after id ``before`` (a relay settles after its last byte)."""

    async def wait() -> AiRequestLog:
        while True:
            row = await AiRequestLog.filter(id__gt=before).order_by("id").first()
            if row is not None:
                return row
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(wait(), within)


async def max_log_id() -> int:
    row = await AiRequestLog.all().order_by("-id").first()
    return row.id if row else 0


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-fake",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there."},
            "finish_reason": "stop",
        }
    ],
    "usage": openai_usage(1000, 500, cached=200),
}
# 800 uncached × $1 + 200 cached × $0.10 + 500 out × $2, per million, in micro-USD.
COMPLETION_COST = 800 + 20 + 1000


async def test_a_non_streamed_completion_is_passed_through_costed_and_logged(
    llm: FakeLlm, live_server: str, admin_token: str, models: Models
) -> None:
    llm.push(JsonReply(200, COMPLETION))
    before = await CostModelDay.filter(model_config_id=models.openai.id).first()
    answer = await oai(live_server, admin_token).chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "Hi"}], temperature=0.25
    )
    assert answer.choices[0].message.content == "Hello there."
    sent = llm.requests[-1]
    assert sent.body["model"] == "gpt-fake"
    assert sent.body["temperature"] == 0.25
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert admin_token not in json.dumps(sent.headers)
    row = await last_log()
    assert (row.client, row.endpoint, row.stream, row.status) == (
        "OPENAI_SDK", "chat.completions", False, 200,
    )  # fmt: skip
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (800, 200, 500)
    assert row.cost_micros == COMPLETION_COST
    assert row.chat_id is None
    assert row.provider == "openai"
    assert row.model == "gpt-fake"
    day = await CostModelDay.get(model_config_id=models.openai.id)
    assert day.cost_micros - (before.cost_micros if before else 0) == COMPLETION_COST


async def test_a_stream_with_tool_calls_arrives_whole_without_the_usage_chunk_it_did_not_ask_for(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    llm.push(
        SseReply(
            openai_stream(
                text=["Let me ", "look."],
                tool_calls=[("call_1", "read_file", ['{"path":', ' "a.py"}'])],
                finish="tool_calls",
                usage=openai_usage(40, 12),
            )
        )
    )
    start = await max_log_id()
    stream = await oai(live_server, admin_token).chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "Read a.py"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk leaked
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert text == "Let me look."
    assert calls[0].function is not None
    assert calls[0].function.name == "read_file"
    assert "".join(tc.function.arguments or "" for tc in calls if tc.function) == (
        '{"path": "a.py"}'
    )
    assert llm.requests[-1].body["stream_options"] == {"include_usage": True}
    row = await logged_after(start)
    assert row.stream
    assert (row.input_tokens, row.output_tokens) == (40, 12)
    assert row.cost_micros == 40 + 24
    assert row.time_to_first_token_ms is not None


async def test_a_client_that_asked_for_usage_gets_the_usage_chunk(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    llm.push(SseReply(openai_stream(text=["ok"], usage=openai_usage(5, 1))))
    stream = await oai(live_server, admin_token).chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 5


async def test_anthropic_messages_streamed_and_not_through_the_anthropic_sdk(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-fake",
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 4, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 8},
    }  # fmt: skip
    llm.push(
        JsonReply(200, message),
        SseReply(
            anthropic_stream(
                ("text", ["Reading"]),
                ("tool_use", ("toolu_1", "read_file", ['{"path": ', '"a.py"}'])),
                stop_reason="tool_use",
                input_tokens=50,
                output_tokens=20,
                cache_read=10,
            )
        ),
    )
    client = claude(live_server, admin_token)
    answer = await client.messages.create(
        model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "Hi!"
    assert llm.requests[-1].headers["x-api-key"] == TEST_KEY
    row = await last_log()
    assert (row.client, row.endpoint) == ("ANTHROPIC_SDK", "messages")
    assert (row.input_tokens, row.cache_read_tokens, row.cache_write_tokens) == (30, 100, 8)
    assert row.cost_micros == 30 + 10 + 10 + 8  # 8 out × $2 = 8; rounded up per call

    start = await max_log_id()
    async with client.messages.stream(
        model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "Read a.py"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[1].type == "tool_use"
    assert final.content[1].input == {"path": "a.py"}
    row = await logged_after(start)
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (50, 20, 10)
    assert row.cost_micros == 50 + 40 + 1


async def test_upstream_errors_pass_through_with_their_status(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    llm.push(
        openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded"),
        anthropic_error(500, "api_error", "Internal server error"),
    )
    with pytest.raises(openai.RateLimitError) as limited:
        await oai(live_server, admin_token).chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "Hi"}]
        )
    assert limited.value.status_code == 429
    assert limited.value.code == "rate_limit_exceeded"
    row = await last_log()
    assert row.status == 429
    assert row.cost_micros is None
    assert row.input_tokens is None
    with pytest.raises(anthropic.InternalServerError) as failed:
        await claude(live_server, admin_token).messages.create(
            model="claude-fake", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert failed.value.status_code == 500
    assert (await last_log()).status == 500


async def test_a_client_that_leaves_mid_stream_stops_the_provider_and_pays_what_was_used(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    llm.push(SseReply(openai_stream(text=["tok"] * 400, usage=openai_usage(10, 400)), delay=0.01))
    start = await max_log_id()
    client = oai(live_server, admin_token)
    stream = await client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "Count"}], stream=True
    )
    received = 0
    async for _ in stream:
        received += 1
        if received == 5:
            break
    await stream.close()
    await asyncio.wait_for(llm.disconnects.wait(), 5)
    row = await logged_after(start)
    assert row.status == 200
    assert row.output_tokens is not None
    assert 4 <= row.output_tokens < 400  # one token per delta relayed, not the whole answer
    assert row.cost_micros is not None
    assert row.cost_micros > 0


async def test_a_silent_provider_is_a_504_and_an_unreachable_one_a_502(
    llm: FakeLlm, app: Starlette, live_server: str, admin_token: str, models: Models
) -> None:
    settings = app.state.gateway.settings
    llm.push(StallReply(2.0))
    settings.read_timeout = 0.2
    try:
        with pytest.raises(openai.APIStatusError) as late:
            await oai(live_server, admin_token).chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": "Hi"}]
            )
    finally:
        settings.read_timeout = 600.0
    assert late.value.status_code == 504
    assert (await last_log()).status == 504
    provider = await Provider.get(id=models.anthropic.provider_id)  # type: ignore[attr-defined]
    await Provider.filter(id=provider.id).update(base_url="http://127.0.0.1:9")
    app.state.gateway.route_cache.clear()
    try:
        with pytest.raises(anthropic.APIStatusError) as down:
            await claude(live_server, admin_token).messages.create(
                model="claude-fake", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
            )
    finally:
        await Provider.filter(id=provider.id).update(base_url=provider.base_url)
        app.state.gateway.route_cache.clear()
    assert down.value.status_code == 502
    assert down.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_the_provider_key_never_reaches_a_response_or_a_log_row(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    llm.keys = {"some-other-key"}  # the fake now echoes our key back in its 401
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{live_server}/v1/chat/completions",
            json={"model": "gpt-fake", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"authorization": f"Bearer {admin_token}"},
        )
    assert answer.status_code == 401
    assert TEST_KEY not in answer.text
    assert "[REDACTED]" in answer.text
    assert TEST_KEY not in json.dumps(dict(answer.headers))
    rows = await AiRequestLog.all().values()
    assert rows
    assert TEST_KEY not in repr(rows)
    assert admin_token not in repr(rows)


async def test_requests_without_a_valid_token_get_a_401_in_the_providers_shape(
    live_server: str,
) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        await oai(live_server, "agq_not-a-token").chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "Hi"}]
        )
    assert refused.value.status_code == 401
    assert "refused" in refused.value.message
    async with httpx.AsyncClient() as http:
        missing = await http.post(
            f"{live_server}/v1/messages",
            json={"model": "claude-fake", "max_tokens": 10, "messages": []},
            headers={"anthropic-version": "2023-06-01"},
        )
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"


async def test_models_a_user_cannot_use_are_refused_with_the_catalogs_reason(
    live_server: str, admin_token: str
) -> None:
    client = oai(live_server, admin_token)
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "Hi"}]
        )
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError) as keyless:
        await client.chat.completions.create(
            model="own-key-model", messages=[{"role": "user", "content": "Hi"}]
        )
    assert keyless.value.code == "user_api_key_required"
    with pytest.raises(openai.BadRequestError) as wrong_wire:
        await client.chat.completions.create(
            model="claude-fake", messages=[{"role": "user", "content": "Hi"}]
        )
    assert "/v1/messages" in wrong_wire.value.message


async def test_the_model_list_shows_what_the_caller_can_use_in_each_format(
    live_server: str, admin_token: str
) -> None:
    listed = await oai(live_server, admin_token).models.list()
    assert [m.id for m in listed.data] == ["gpt-fake"]
    claude_models = await claude(live_server, admin_token).models.list()
    assert [m.id for m in claude_models.data] == ["claude-fake"]


async def test_count_tokens_passes_through_and_costs_nothing(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    llm.push(JsonReply(200, {"input_tokens": 42}))
    counted = await claude(live_server, admin_token).messages.count_tokens(
        model="claude-fake", messages=[{"role": "user", "content": "Hi"}]
    )
    assert counted.input_tokens == 42
    row = await last_log()
    assert row.endpoint == "messages.count_tokens"
    assert row.cost_micros is None


@pytest.fixture
async def limited_user(app: Starlette, live_server: str) -> AsyncIterator[str]:
    """A member whose limit pays for exactly 20 of the requests below."""
    from db.usage_limits import LimitSettings, read_settings, write_settings
    from db.vocabulary import TokenKind, UsageLimitPeriod
    from resolvers.accounts import create_user
    from resolvers.tokens import issue_token

    user = await create_user("limited", "correct-horse-battery")
    previous = await read_settings()
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, None))
    # Each request: ≤ 100 input tokens (the model's context) + 100 output, $1 and $2/M.
    await User.filter(id=user.id).update(spend_limit_micros=20 * (100 + 200))
    issued = await issue_token(user, TokenKind.API, "limited", None)
    yield issued.secret
    await write_settings(previous)


async def test_the_limit_refuses_the_21st_concurrent_request_of_a_budget_for_20(
    llm: FakeLlm, live_server: str, limited_user: str, models: Models
) -> None:
    small = await ModelConfig.create(
        provider_id=models.openai.provider_id,  # type: ignore[attr-defined]
        model="gpt-small",
        display_name="GPT small",
        context_limit=100,
        input_price_micros=1_000_000,
        output_price_micros=2_000_000,
    )
    billed = {**COMPLETION, "usage": openai_usage(100, 100)}
    llm.push(*[JsonReply(200, billed) for _ in range(21)])
    client = oai(live_server, limited_user)

    async def one() -> int:
        try:
            await client.chat.completions.create(
                model="gpt-small",
                max_tokens=100,
                messages=[{"role": "user", "content": "x" * 200}],
            )
        except openai.RateLimitError as exc:
            error = exc.body
            assert isinstance(error, dict)
            assert error["limitMicros"] == 6000
            assert error["spentMicros"] + error["reservedMicros"] == 6000
            assert error["resetsAt"]
            return 429
        return 200

    statuses = await asyncio.gather(*[one() for _ in range(21)])
    assert sorted(statuses) == [200] * 20 + [429]
    counter = await SpendCounter.get(user__username="limited", period="month")
    assert (counter.spent_micros, counter.reserved_micros) == (6000, 0)
    day = await CostModelDay.get(model_config_id=small.id)
    assert day.cost_micros == 6000
    assert day.priced_count == 20
    chatless = await CostChatDay.get(chat_id=NIL_UUID, user__username="limited")
    assert chatless.cost_micros == 6000  # gateway spend is chat-less: the nil chat's line


def _response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "status": status,
        "model": "gpt-fake", "output": [], "usage": usage, "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [],
    }  # fmt: skip


RESPONSES_USAGE = {
    "input_tokens": 300, "output_tokens": 40, "total_tokens": 340,
    "input_tokens_details": {"cached_tokens": 100},
    "output_tokens_details": {"reasoning_tokens": 10},
}  # fmt: skip


async def test_the_responses_api_streamed_is_costed_from_its_completed_event(
    llm: FakeLlm, live_server: str, admin_token: str
) -> None:
    events: list[tuple[str | None, Any]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0,
                              "response": _response("in_progress", None)}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hi",
                                        "item_id": "m", "output_index": 0, "content_index": 0,
                                        "sequence_number": 1, "logprobs": []}),
        ("response.completed", {"type": "response.completed", "sequence_number": 2,
                                "response": _response("completed", RESPONSES_USAGE)}),
    ]  # fmt: skip
    llm.push(SseReply(events))
    start = await max_log_id()
    stream = await oai(live_server, admin_token).responses.create(
        model="gpt-fake", input="Hi", stream=True, max_output_tokens=500
    )
    kinds = [event.type async for event in stream]
    assert kinds == ["response.created", "response.output_text.delta", "response.completed"]
    assert llm.requests[-1].path == "/v1/responses"
    row = await logged_after(start)
    assert row.endpoint == "responses"
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (200, 100, 40)
    assert row.reasoning_tokens == 10
    assert row.cost_micros == 200 + 10 + 80
    assert row.time_to_first_token_ms is not None


async def test_a_limited_call_whose_provider_reports_no_usage_is_charged_its_worst_case(
    llm: FakeLlm, live_server: str, models: Models
) -> None:
    from db.usage_limits import LimitSettings, read_settings, write_settings
    from db.vocabulary import TokenKind, UsageLimitPeriod
    from resolvers.accounts import create_user
    from resolvers.tokens import issue_token

    tiny = await ModelConfig.create(
        provider_id=models.openai.provider_id,  # type: ignore[attr-defined]
        model="gpt-tiny",
        display_name="GPT tiny",
        context_limit=100,
        input_price_micros=1_000_000,
        output_price_micros=2_000_000,
    )
    user = await create_user("unreported", "correct-horse-battery")
    await User.filter(id=user.id).update(spend_limit_micros=1_000_000)
    previous = await read_settings()
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, None))
    try:
        llm.push(JsonReply(200, {**COMPLETION, "usage": None}))
        token = (await issue_token(user, TokenKind.API, "t", None)).secret
        await oai(live_server, token).chat.completions.create(
            model="gpt-tiny", max_tokens=100, messages=[{"role": "user", "content": "x" * 200}]
        )
    finally:
        await write_settings(previous)
    row = await last_log("unreported")
    # The input bound (the model's 100-token context) and the 100 output tokens held.
    assert (row.input_tokens, row.output_tokens, row.cost_micros) == (100, 100, 300)
    day = await CostModelDay.get(model_config_id=tiny.id)
    assert day.cost_micros == 300
