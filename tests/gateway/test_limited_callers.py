"""What a member under a spend limit can make the gateway do: nothing that costs
more than the hold it took, whatever the request leaves out or the client does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.models import ModelConfig, User
from db.spend import DEFAULT_OUTPUT_TOKENS
from tests.daemon.fake_llm import FakeLlm, JsonReply, openai_usage
from tests.gateway.conftest import Models

pytestmark = pytest.mark.usefixtures("models")

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
    "model": "gpt-open", "usage": openai_usage(10, 10),
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hi"}}],
}  # fmt: skip


@pytest.fixture
async def limited(app: Starlette, models: Models) -> AsyncIterator[str]:
    """A member with a generous limit, and a model with no output cap of its own."""
    from db.usage_limits import LimitSettings, read_settings, write_settings
    from db.vocabulary import TokenKind, UsageLimitPeriod
    from resolvers.accounts import create_user
    from resolvers.tokens import issue_token

    await ModelConfig.get_or_create(
        model="gpt-open",
        defaults={
            "provider_id": models.openai.provider_id,  # type: ignore[attr-defined]
            "display_name": "GPT open",
            "context_limit": 200_000,
            "input_price_micros": 1_000_000,
            "output_price_micros": 2_000_000,
        },
    )
    user = await User.get_or_none(username="capped")
    if user is None:
        user = await create_user("capped", "correct-horse-battery")
    await User.filter(id=user.id).update(spend_limit_micros=100_000_000)
    previous = await read_settings()
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, None))
    yield (await issue_token(user, TokenKind.API, "capped", None)).secret
    await write_settings(previous)


HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"messages": HI}, "max_completion_tokens"),
        ("/v1/responses", {"input": "Hi"}, "max_output_tokens"),
    ],
)
async def test_a_request_without_an_output_cap_is_sent_with_the_one_its_hold_covers(
    llm: FakeLlm, live_server: str, limited: str, path: str, body: dict[str, Any], field: str
) -> None:
    # Without a cap the provider may write up to the model's own maximum, far past
    # the 16 384 tokens held: the limit would be overrun by whatever it wrote.
    llm.push(JsonReply(200, COMPLETION))
    async with httpx.AsyncClient(base_url=live_server) as client:
        answer = await client.post(
            path,
            json={"model": "gpt-open", **body},
            headers={"authorization": f"Bearer {limited}"},
        )
    assert answer.status_code == 200, answer.text
    sent = llm.requests[-1].body
    assert sent[field] == DEFAULT_OUTPUT_TOKENS


async def test_several_choices_are_held_for_each_of_them(
    app: Starlette, llm: FakeLlm, live_server: str, models: Models
) -> None:
    # ``n`` choices may each write the output cap: held for one, a member with budget
    # for one answer of 100 tokens got four and overran the limit threefold.
    from db.models import SpendCounter
    from db.usage_limits import LimitSettings, read_settings, write_settings
    from db.vocabulary import TokenKind, UsageLimitPeriod
    from resolvers.accounts import create_user
    from resolvers.tokens import issue_token

    await ModelConfig.create(
        provider_id=models.openai.provider_id,  # type: ignore[attr-defined]
        model="gpt-choices",
        display_name="GPT choices",
        context_limit=100,  # the input bound: at most 100 tokens, $1/M
        input_price_micros=1_000_000,
        output_price_micros=2_000_000,
    )
    user = await create_user("chooser", "correct-horse-battery")
    limit = 100 + 2 * 100  # the input bound and 100 output tokens
    await User.filter(id=user.id).update(spend_limit_micros=limit)
    token = (await issue_token(user, TokenKind.API, "chooser", None)).secret
    previous = await read_settings()
    await write_settings(LimitSettings(True, UsageLimitPeriod.MONTH, None))
    try:
        # An honest provider: four choices of 100 tokens each.
        llm.push(JsonReply(200, {**COMPLETION, "usage": openai_usage(100, 400)}))
        async with httpx.AsyncClient(base_url=live_server) as client:
            answer = await client.post(
                "/v1/chat/completions",
                json={"model": "gpt-choices", "n": 4, "max_tokens": 100, "messages": HI},
                headers={"authorization": f"Bearer {token}"},
            )
    finally:
        await write_settings(previous)
    counter = await SpendCounter.get_or_none(user_id=user.id, period="month")
    spent = counter.spent_micros if counter else 0
    assert spent <= limit, answer.text
    assert answer.status_code == 429
