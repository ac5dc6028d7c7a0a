"""A chat list with each chat's latest messages (previews): one query for all chats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from db.models import Chat, ChatMessage, User
from db.vocabulary import MessageRole, Visibility
from resolvers.accounts import create_user
from tests.conftest import login_token
from tests.harness import PASSWORD, GraphQLClient, counted_queries

PREVIEWS = """query($n: Int, $m: Int, $before: String) {
  chats(first: $n) {
    nodes { title messages(last: $m, before: $before) {
      nodes { role parts { ... on TextPart { text } } }
      pageInfo { hasPreviousPage hasNextPage }
    } }
  }
}"""


async def _chats(owner: User, count: int, per_chat: int) -> None:
    now = datetime.now(UTC)
    for i in range(count):
        chat_id = uuid.uuid4()
        await Chat.create(
            id=chat_id, owner=owner, root_id=chat_id, title=f"c{i}", updated_at=now - timedelta(i)
        )
        for j in range(per_chat):
            role = MessageRole.USER if j % 2 == 0 else MessageRole.ASSISTANT
            parts = [{"type": "text", "text": f"c{i} m{j}"}]
            await ChatMessage.create(chat_id=chat_id, role=role, parts=parts)
        await ChatMessage.create(  # never shown to people
            chat_id=chat_id,
            role=MessageRole.SYSTEM,
            parts=[{"type": "text", "text": "hidden"}],
            visibility=Visibility.MODEL,
        )


async def _run(gql: GraphQLClient, token: str, **variables: Any) -> tuple[int, Any]:
    with counted_queries() as sent:
        result = await gql(PREVIEWS, variables, token=token)
    assert "errors" not in result, result
    return len(sent), result["data"]["chats"]["nodes"]


async def test_previews_of_fifty_chats_cost_what_one_chats_cost(gql: GraphQLClient) -> None:
    owner = await create_user("previewer", PASSWORD)
    token = await login_token(gql, "previewer")
    await gql("{ viewer { user { id } } }", token=token)  # its once-a-minute lastUsedAt write
    await _chats(owner, 50, 3)

    one, first = await _run(gql, token, n=1, m=2)
    fifty, nodes = await _run(gql, token, n=50, m=2)

    assert fifty == one
    assert first[0] == nodes[0]
    assert len({node["title"] for node in nodes}) == 50
    for node in nodes:
        texts = [m["parts"][0]["text"] for m in node["messages"]["nodes"]]
        assert texts == [f"{node['title']} m1", f"{node['title']} m2"]
        assert node["messages"]["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}


async def test_a_bad_cursor_in_a_preview_is_bad_user_input(gql: GraphQLClient) -> None:
    owner = await create_user("badcursor", PASSWORD)
    token = await login_token(gql, "badcursor")
    await _chats(owner, 2, 1)
    result = await gql(PREVIEWS, {"n": 2, "m": 1, "before": "nope"}, token=token)
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert result["errors"][0]["extensions"]["field"] == "before"
