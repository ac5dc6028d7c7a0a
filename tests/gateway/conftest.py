"""Fixtures for the gateway tests: the app served by a real uvicorn, the fake
provider, and the providers and priced models that route to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import ModelConfig, Provider
from db.vocabulary import ProviderKind
from tests.daemon.fake_llm import TEST_KEY, FakeLlm, serve

# Micro-USD per million tokens: $1 in, $2 out, $0.10 cache reads, $1.25 cache writes.
PRICES: dict[str, Any] = {
    "input_price_micros": 1_000_000,
    "output_price_micros": 2_000_000,
    "cache_read_price_micros": 100_000,
    "cache_write_price_micros": 1_250_000,
}


@dataclass
class Models:
    openai: ModelConfig
    anthropic: ModelConfig
    keyed: ModelConfig  # its provider wants each user's own key


@pytest.fixture(scope="module")
async def served_llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    async with serve(fake):
        yield fake


@pytest.fixture
def llm(served_llm: FakeLlm) -> FakeLlm:
    served_llm.reset()
    return served_llm


@pytest.fixture(scope="module")
async def models(app: Starlette, served_llm: FakeLlm, admin_token: str) -> Models:
    secret = app.state.secrets.encrypt(TEST_KEY)
    openai = await Provider.create(
        kind=ProviderKind.OPENAI,
        display_name="OpenAI",
        base_url=f"{served_llm.url}/v1",
        api_key_ciphertext=secret,
    )
    anthropic = await Provider.create(
        kind=ProviderKind.ANTHROPIC,
        display_name="Anthropic",
        base_url=served_llm.url,
        api_key_ciphertext=secret,
    )
    keyed = await Provider.create(
        kind=ProviderKind.OPENAI_COMPATIBLE,
        display_name="Own keys",
        base_url=f"{served_llm.url}/v1",
        central_key_enabled=False,
        user_keys_allowed=True,
    )
    return Models(
        openai=await ModelConfig.create(
            provider=openai, model="gpt-fake", display_name="GPT fake", context_limit=200_000,
            **PRICES,
        ),
        anthropic=await ModelConfig.create(
            provider=anthropic, model="claude-fake", display_name="Claude fake",
            context_limit=200_000, **PRICES,
        ),
        keyed=await ModelConfig.create(
            provider=keyed, model="own-key-model", display_name="Own key", context_limit=8_000,
            **PRICES,
        ),
    )  # fmt: skip
