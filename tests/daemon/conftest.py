"""Fixtures for the provider-client tests: one fake LLM server per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.daemon.fake_llm import FakeLlm, serve


@pytest.fixture(scope="module")
async def served_llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    async with serve(fake):
        yield fake


@pytest.fixture
def llm(served_llm: FakeLlm) -> FakeLlm:
    served_llm.reset()
    return served_llm
