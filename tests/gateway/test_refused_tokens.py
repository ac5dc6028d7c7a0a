"""Tokens the gateway must refuse like the API does: revoked, expired, a disabled
account's. Each answers 401 in the provider's shape and nothing goes upstream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from db.models import ApiToken, User
from db.vocabulary import TokenKind
from resolvers.accounts import create_user
from resolvers.tokens import issue_token
from tests.daemon.fake_llm import FakeLlm

pytestmark = pytest.mark.usefixtures("models")

BODY = {"model": "claude-fake", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize("how", ["revoked", "expired", "disabled"])
async def test_a_token_the_api_refuses_is_refused_by_the_gateway(
    llm: FakeLlm, live_server: str, how: str
) -> None:
    user = await create_user(f"gone-{how}", "correct-horse-battery")
    issued = await issue_token(user, TokenKind.API, "tool", None)
    now = datetime.now(UTC)
    if how == "revoked":
        await ApiToken.filter(id=issued.token.id).update(revoked_at=now)
    elif how == "expired":
        await ApiToken.filter(id=issued.token.id).update(expires_at=now - timedelta(seconds=1))
    else:
        await User.filter(id=user.id).update(disabled=True)
    async with httpx.AsyncClient(base_url=live_server) as client:
        answer = await client.post("/v1/messages", json=BODY, headers={"x-api-key": issued.secret})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"
    assert issued.secret not in answer.text
    assert llm.requests == []
