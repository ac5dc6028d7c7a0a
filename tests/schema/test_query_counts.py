"""SQL per request does not grow with page size (dataloaders and keyset pages)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from db.models import Chat, ChatMessage, User
from db.vocabulary import MessageRole
from resolvers.accounts import create_user
from tests.conftest import login_token
from tests.harness import PASSWORD, GraphQLClient, counted_queries

CHATS = """query($n: Int) {
  chats(first: $n) {
    edges { cursor node { id title status hasUnread owner { username }
      children { id title owner { username } }
      queuedMessages { id }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""

MESSAGES = """query($id: ID!, $n: Int) {
  chat(id: $id) {
    title
    messages(last: $n) {
      edges { cursor node { id role createdAt createdBy { username }
        parts { __typename ... on TextPart { text } } } }
    }
  }
}"""


async def _owner_with_chats(gql: GraphQLClient, name: str, chats: int) -> tuple[User, str]:
    user = await create_user(name, PASSWORD)
    now = datetime.now(UTC)
    for i in range(chats):
        root = uuid.uuid4()
        await Chat.create(
            id=root, owner=user, root_id=root, title=f"chat {i}", updated_at=now - timedelta(i)
        )
        child = uuid.uuid4()
        await Chat.create(
            id=child, owner=user, parent_id=root, root_id=root, title=f"sub {i}", updated_at=now
        )
    token = await login_token(gql, name)
    await gql("{ viewer { user { id } } }", token=token)  # its once-a-minute lastUsedAt write
    return user, token


async def _count(gql: GraphQLClient, query: str, variables: dict[str, object], token: str) -> int:
    with counted_queries() as sent:
        result = await gql(query, variables, token=token)
    assert "errors" not in result, result
    return len(sent)


async def test_chat_page_queries_do_not_grow_with_page_size(gql: GraphQLClient) -> None:
    _, token = await _owner_with_chats(gql, "many_chats", 50)
    one = await _count(gql, CHATS, {"n": 1}, token)
    fifty = await _count(gql, CHATS, {"n": 50}, token)
    assert fifty == one
    # chats page, owners, children, queues (the token was verified by an earlier request)
    assert one == 4


async def test_message_page_queries_do_not_grow_with_page_size(gql: GraphQLClient) -> None:
    user, token = await _owner_with_chats(gql, "long_chat", 1)
    chat = await Chat.get(owner=user, parent_id=None)
    for i in range(120):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        await ChatMessage.create(
            chat=chat,
            role=role,
            parts=[{"type": "text", "text": f"m{i}"}],
            created_by=user if role is MessageRole.USER else None,
        )
    from resolvers import global_id

    gid = global_id.encode("Chat", chat.id)
    one = await _count(gql, MESSAGES, {"id": gid, "n": 2}, token)  # a user and a reply
    hundred = await _count(gql, MESSAGES, {"id": gid, "n": 100}, token)
    assert hundred == one
    # chat, messages page, authors (the token was verified by an earlier request)
    assert one == 3


async def test_a_mutation_reuses_the_verified_token(gql: GraphQLClient) -> None:
    _, token = await _owner_with_chats(gql, "mutator", 1)
    chats = (await gql.ok("{ chats(first: 1) { nodes { id } } }", token=token))["chats"]
    rename = "mutation($id: ID!, $t: String!) { updateChat(input: {id: $id, title: $t}) { title } }"
    with counted_queries() as sent:
        data = await gql.ok(rename, {"id": chats["nodes"][0]["id"], "t": "renamed"}, token=token)
    assert data["updateChat"]["title"] == "renamed"
    token_checks = [q for q in sent if "api_tokens" in q and "token_hash" in q]
    assert token_checks == []  # verified by the earlier request, within the cache's TTL
