"""Usage normalised once, against recorded responses of each wire format, and
what it costs.

The recordings under ``recorded/`` are whole provider responses (non-streamed
bodies, and streams as their SSE events). OpenAI counts cached prompt tokens
*inside* ``prompt_tokens``; Anthropic counts cache reads and writes *outside*
``input_tokens``: whichever the format, a cached token is counted once, and
reasoning is a part of output. The daemon's real clients, fed the same streams
over HTTP by the fake provider, report the same ``Usage``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise.transactions import in_transaction

from daemon.providers import ModelMessage, ModelRequest, Usage
from daemon.providers.anthropic_client import AnthropicClient
from daemon.providers.openai_client import OpenAIClient
from db import spend
from db.costing import (
    ModelPrices,
    cost_micros,
    micros_for_tokens,
    usage_from_anthropic,
    usage_from_openai,
)
from db.models import Chat, ChatMessage, CostUserDay, ModelConfig, Provider, User
from db.parts import TextPart
from db.vocabulary import MessageRole, ProviderKind
from resolvers.accounts import create_user
from tests.daemon.fake_llm import TEST_KEY, FakeLlm, SseReply, serve
from tests.daemon.streams import collect
from tests.harness import PASSWORD

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def openai_stream_usage(chunks: list[Any]) -> dict[str, Any]:
    """The usage of a stream's last chunk (sent with ``include_usage``)."""
    usages = [c["usage"] for c in chunks if isinstance(c, dict) and c.get("usage")]
    assert len(usages) == 1
    return dict(usages[0])


def anthropic_stream_usage(events: list[Any]) -> Usage:
    """What a consumer of the stream's two usage events ends up with."""
    usage: Usage | None = None
    for name, data in events:
        if name == "message_start":
            usage = usage_from_anthropic(data["message"]["usage"], usage)
        elif name == "message_delta":
            usage = usage_from_anthropic(data["usage"], usage)
    assert usage is not None
    return usage


# -- normalisation of each wire format -------------------------------------------------


def test_openai_chat_completion_cached_tokens_are_inside_the_prompt() -> None:
    body = recorded("openai_chat_completion.json")
    usage = usage_from_openai(body["usage"])
    # 2048 prompt tokens of which 1920 were cache hits; 611 output of which 448 reasoning
    assert usage == Usage(
        input_tokens=128,
        output_tokens=611,
        reasoning_tokens=448,
        cache_read_tokens=1920,
        cache_write_tokens=0,
    )
    assert usage.context_tokens == body["usage"]["prompt_tokens"]


def test_openai_stream_usage_comes_from_the_final_chunk() -> None:
    usage = usage_from_openai(openai_stream_usage(recorded("openai_chat_stream.json")))
    assert usage == Usage(input_tokens=318, output_tokens=5, cache_read_tokens=4992)
    assert usage.context_tokens == 5310


def test_openai_responses_usage() -> None:
    body = recorded("openai_responses.json")
    usage = usage_from_openai(body["usage"])
    assert usage == Usage(
        input_tokens=330, output_tokens=1290, reasoning_tokens=1216, cache_read_tokens=3072
    )
    assert usage.context_tokens + usage.output_tokens == body["usage"]["total_tokens"]


def test_anthropic_cache_tokens_are_outside_input() -> None:
    usage = usage_from_anthropic(recorded("anthropic_message.json")["usage"])
    assert usage == Usage(
        input_tokens=14, output_tokens=322, cache_read_tokens=12250, cache_write_tokens=1873
    )
    assert usage.context_tokens == 14 + 1873 + 12250


def test_anthropic_stream_merges_start_and_cumulative_delta() -> None:
    usage = anthropic_stream_usage(recorded("anthropic_stream.json"))
    # the delta repeats the input side (cumulative): counted once, not added
    assert usage == Usage(
        input_tokens=9, output_tokens=187, cache_read_tokens=15034, cache_write_tokens=2210
    )


def _with_delta_usage(events: list[Any], delta_usage: dict[str, Any]) -> list[Any]:
    return [
        (name, {**data, "usage": delta_usage}) if name == "message_delta" else (name, data)
        for name, data in events
    ]


def test_anthropic_stream_with_an_output_only_delta_keeps_the_input_side() -> None:
    """The older wire format: ``message_delta`` carries ``output_tokens`` only."""
    events = _with_delta_usage(recorded("anthropic_stream.json"), {"output_tokens": 187})
    assert anthropic_stream_usage(events) == Usage(9, 187, 0, 15034, 2210)


def test_anthropic_compatible_server_zeros_in_the_delta_do_not_erase_the_prompt() -> None:
    """Some compatible servers send 0 for the input side of ``message_delta``."""
    zeros = {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 187,
    }
    events = _with_delta_usage(recorded("anthropic_stream.json"), zeros)
    assert anthropic_stream_usage(events) == Usage(9, 187, 0, 15034, 2210)


def test_anthropic_compatible_server_with_the_prompt_only_in_the_delta() -> None:
    """…and others send 0 in ``message_start`` and the real counts at the end."""
    events = recorded("anthropic_stream.json")
    start_name, start = events[0]
    message = {**start["message"], "usage": {"input_tokens": 0, "output_tokens": 0}}
    events[0] = (start_name, {**start, "message": message})
    assert anthropic_stream_usage(events) == Usage(9, 187, 0, 15034, 2210)


def test_deepseek_style_cache_hits_are_cache_reads() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 1204,
            "completion_tokens": 40,
            "total_tokens": 1244,
            "prompt_cache_hit_tokens": 1024,
            "prompt_cache_miss_tokens": 180,
        }
    )
    assert usage == Usage(input_tokens=180, output_tokens=40, cache_read_tokens=1024)


def test_malformed_counts_are_zero_and_reasoning_never_exceeds_output() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": None,
            "completion_tokens": 10,
            "prompt_tokens_details": None,
            "completion_tokens_details": {"reasoning_tokens": 99},
        }
    )
    assert usage == Usage(input_tokens=0, output_tokens=10, reasoning_tokens=10)
    assert usage_from_openai({"prompt_tokens": -5, "completion_tokens": True}) == Usage()


# -- cost --------------------------------------------------------------------------------

# USD 3 / 15 per million tokens, cache reads 0.30, writes 3.75 (a typical Sonnet price list)
SONNET = ModelPrices(3_000_000, 15_000_000, 300_000, 3_750_000)


def test_cost_of_a_recorded_anthropic_reply() -> None:
    usage = usage_from_anthropic(recorded("anthropic_message.json")["usage"])
    # 14×3 + 322×15 + 12250×0.3 + 1873×3.75 = 42 + 4830 + 3675 + 7023.75 micros
    assert cost_micros(SONNET, usage) == 15571


def test_cost_rounds_up_to_the_next_micro() -> None:
    prices = ModelPrices(input_micros=1, output_micros=1)
    assert cost_micros(prices, Usage(input_tokens=1)) == 1
    assert cost_micros(prices, Usage(input_tokens=1_000_000)) == 1
    assert cost_micros(prices, Usage(input_tokens=1_000_001)) == 2
    assert cost_micros(prices, Usage()) == 0


def test_rounding_is_exact_for_large_products() -> None:
    # (10**17 + 1) / 10**6 as a float is exactly 10**11: its ceiling would lose a micro
    assert micros_for_tokens(10**17 + 1, 1) == 10**11 + 1
    assert micros_for_tokens(0, 5) == 0


def test_unpriced_is_none_never_zero() -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost_micros(ModelPrices(), usage) is None
    assert cost_micros(ModelPrices(input_micros=1_000_000), usage) is None
    assert cost_micros(ModelPrices(output_micros=1_000_000), usage) is None
    assert cost_micros(ModelPrices(0, 0), usage) == 0  # priced at zero: free on purpose


def test_missing_cache_prices_fall_back_to_the_input_price() -> None:
    usage = Usage(input_tokens=100, cache_read_tokens=1000, cache_write_tokens=10_000)
    fallback = ModelPrices(input_micros=2_000_000, output_micros=8_000_000)
    explicit = ModelPrices(2_000_000, 8_000_000, 2_000_000, 2_000_000)
    assert cost_micros(fallback, usage) == cost_micros(explicit, usage) == 22_200
    only_read = ModelPrices(2_000_000, 8_000_000, cache_read_micros=500_000)
    assert cost_micros(only_read, usage) == 200 + 500 + 20_000


def test_cached_tokens_are_billed_once_at_the_cache_price() -> None:
    """The recorded OpenAI reply: 1920 of 2048 prompt tokens were cache hits."""
    usage = usage_from_openai(recorded("openai_chat_completion.json")["usage"])
    prices = ModelPrices(1_100_000, 4_400_000, 275_000)  # o4-mini
    # 128×1.1 + 1920×0.275 + 611×4.4 = 140.8 + 528 + 2688.4
    assert cost_micros(prices, usage) == 3358


# -- the daemon's clients report the same Usage ------------------------------------------


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    async with serve(fake):
        yield fake


def _request(model: str) -> ModelRequest:
    return ModelRequest(model=model, system=None, messages=[ModelMessage("user", [TextPart("hi")])])


async def test_openai_client_reports_the_recorded_stream_usage(llm: FakeLlm) -> None:
    chunks = recorded("openai_chat_stream.json")
    llm.push(SseReply([(None, chunk) for chunk in chunks]))
    client = OpenAIClient(api_key=TEST_KEY, base_url=f"{llm.url}/v1", timeout=5.0)
    try:
        events = await collect(client, _request("gpt-test"))
    finally:
        await client.aclose()
    reported = [e for e in events if isinstance(e, Usage)]
    assert reported == [usage_from_openai(openai_stream_usage(chunks))]
    assert reported[0].cache_read_tokens == 4992


async def test_openai_client_reports_the_recorded_completion_usage(llm: FakeLlm) -> None:
    """The client only streams: the recorded non-streamed reply's usage, sent as
    the stream's usage chunk, comes out as the normaliser reads the body."""
    body = recorded("openai_chat_completion.json")
    chunk = {**body, "object": "chat.completion.chunk"}
    events: list[Any] = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": body["usage"]},
        "[DONE]",
    ]
    llm.push(SseReply([(None, e) for e in events]))
    client = OpenAIClient(api_key=TEST_KEY, base_url=f"{llm.url}/v1", timeout=5.0)
    try:
        got = [e for e in await collect(client, _request("gpt-test")) if isinstance(e, Usage)]
    finally:
        await client.aclose()
    assert got == [usage_from_openai(body["usage"])]
    assert got[0].reasoning_tokens == 448


async def test_anthropic_client_reports_the_recorded_stream_usage(llm: FakeLlm) -> None:
    events = recorded("anthropic_stream.json")
    llm.push(SseReply([(name, data) for name, data in events]))
    client = AnthropicClient(api_key=TEST_KEY, base_url=llm.url, timeout=5.0)
    try:
        got = [e for e in await collect(client, _request("claude-test")) if isinstance(e, Usage)]
    finally:
        await client.aclose()
    assert got == [anthropic_stream_usage(events)]


async def test_anthropic_client_keeps_the_prompt_when_a_delta_reports_zeros(
    llm: FakeLlm,
) -> None:
    zeros = {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 187,
    }
    events = _with_delta_usage(recorded("anthropic_stream.json"), zeros)
    llm.push(SseReply([(name, data) for name, data in events]))
    client = AnthropicClient(api_key=TEST_KEY, base_url=llm.url, timeout=5.0)
    try:
        got = [e for e in await collect(client, _request("claude-test")) if isinstance(e, Usage)]
    finally:
        await client.aclose()
    assert got == [Usage(9, 187, 0, 15034, 2210)]


async def test_anthropic_client_reports_the_recorded_message_usage(llm: FakeLlm) -> None:
    """The client only streams: the recorded non-streamed message, sent as a
    stream (its usage in ``message_start``, output in the delta), reads alike."""
    body = recorded("anthropic_message.json")
    start = {
        **body,
        "content": [],
        "stop_reason": None,
        "usage": {**body["usage"], "output_tokens": 1},
    }
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": body["usage"]["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    llm.push(SseReply(events))
    client = AnthropicClient(api_key=TEST_KEY, base_url=llm.url, timeout=5.0)
    try:
        got = [e for e in await collect(client, _request("claude-test")) if isinstance(e, Usage)]
    finally:
        await client.aclose()
    assert got == [usage_from_anthropic(body["usage"])]


# -- a price change never rewrites history -------------------------------------------------


@pytest.fixture(scope="module")
async def payer(app: Starlette) -> User:
    return await create_user(f"payer-{uuid.uuid4().hex[:6]}", PASSWORD)


async def _chat(owner: User, title: str) -> Chat:
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id, root_id=chat_id, owner_id=owner.id, title=title, updated_at=datetime.now(UTC)
    )


async def test_a_later_price_change_does_not_change_a_stored_cost(payer: User) -> None:
    provider = await Provider.create(kind=ProviderKind.ANTHROPIC, display_name="Anthropic")
    config = await ModelConfig.create(
        provider=provider,
        model="claude-sonnet-4-5",
        display_name="Sonnet",
        context_limit=200_000,
        input_price_micros=3_000_000,
        output_price_micros=15_000_000,
        cache_read_price_micros=300_000,
        cache_write_price_micros=3_750_000,
    )
    chat = await _chat(payer, "priced")
    usage = usage_from_anthropic(recorded("anthropic_message.json")["usage"])
    charge = spend.Charge(
        user_id=payer.id,
        usage=usage,
        prices=ModelPrices.of(config),
        model_config_id=config.id,
        provider="anthropic",
        model=config.model,
        chat_id=chat.id,
    )
    async with in_transaction() as conn:
        message = await ChatMessage.create(
            chat_id=chat.id,
            role=MessageRole.ASSISTANT,
            parts=[{"type": "text", "text": "ok"}],
            model_config_id=config.id,
            using_db=conn,
            **charge.columns(),
        )
        await spend.settle(conn, spend.NO_HOLD, charge)

    config.input_price_micros, config.output_price_micros = 30_000_000, 150_000_000
    config.cache_read_price_micros = config.cache_write_price_micros = None
    await config.save()

    stored = await ChatMessage.get(id=message.id)
    assert stored.total_cost_micros == 15571
    snapshot = ModelPrices(
        stored.input_price_micros,
        stored.output_price_micros,
        stored.cache_read_price_micros,
        stored.cache_write_price_micros,
    )
    assert snapshot == SONNET
    assert cost_micros(snapshot, usage) == stored.total_cost_micros
    assert cost_micros(ModelPrices.of(config), usage) != stored.total_cost_micros
    day = await CostUserDay.get(user_id=payer.id)
    assert (day.cost_micros, day.priced_count) == (15571, 1)


async def test_an_unpriced_call_is_stored_as_null_and_counted_apart(payer: User) -> None:
    chat = await _chat(payer, "unpriced")
    charge = spend.Charge(
        user_id=payer.id,
        usage=Usage(input_tokens=100, output_tokens=10),
        prices=ModelPrices(),
        model_config_id=None,
        provider="openai_compatible",
        model="local-llama",
        chat_id=chat.id,
    )
    before = await CostUserDay.filter(user_id=payer.id).first()
    async with in_transaction() as conn:
        message = await ChatMessage.create(
            chat_id=chat.id,
            role=MessageRole.ASSISTANT,
            parts=[{"type": "text", "text": "ok"}],
            using_db=conn,
            **charge.columns(),
        )
        await spend.settle(conn, spend.NO_HOLD, charge)
    stored = await ChatMessage.get(id=message.id)
    assert stored.total_cost_micros is None
    assert stored.input_price_micros is None
    assert stored.output_price_micros is None
    day = await CostUserDay.get(user_id=payer.id)
    old_cost = before.cost_micros if before else 0
    old_unpriced = before.unpriced_count if before else 0
    assert day.cost_micros == old_cost
    assert day.unpriced_count == old_unpriced + 1
    assert day.input_tokens >= 100
