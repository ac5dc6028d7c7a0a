"""``chat(id) { messages }``: the chat and its page come from ONE statement, on the
compiled engine and on graphql-core alike, and answer exactly as before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from db.models import Chat, ChatMessage
from db.vocabulary import MessageRole
from resolvers import global_id
from server.settings import Settings
from tests.conftest import make_settings
from tests.harness import GraphQLClient, Person, counted_queries, new_person

PAGE = """query($id: ID!, $n: Int, $before: String) {
  chat(id: $id) {
    id title
    messages(last: $n, before: $before) {
      edges { cursor node { id role parts { __typename ... on TextPart { text } } } }
      pageInfo { hasPreviousPage hasNextPage }
    }
  }
}"""


@pytest.fixture(scope="module", params=["compiled", "graphql-core"])
def settings(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return make_settings(
        database_url, tmp_path_factory, compiled_queries=request.param == "compiled"
    )


async def _chat(owner: Person, messages: int) -> str:
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id,
        owner=owner.user,
        root_id=chat_id,
        title="looked ahead",
        updated_at=datetime.now(UTC),
    )
    for i in range(messages):
        await ChatMessage.create(
            chat_id=chat_id,
            role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
            parts=[{"type": "text", "text": f"m{i}"}],
        )
    return global_id.encode("Chat", chat_id)


async def _counted(
    gql: GraphQLClient, query: str, variables: dict[str, object], token: str
) -> tuple[dict[str, Any], list[str]]:
    await gql.ok("{ viewer { user { id } } }", token=token)  # the token is verified and cached
    with counted_queries() as sent:
        result = await gql(query, variables, token=token)
    return result, sent


async def test_a_chat_opened_with_its_history_is_one_statement(gql: GraphQLClient) -> None:
    owner = await new_person("reader")
    gid = await _chat(owner, 7)
    result, sent = await _counted(gql, PAGE, {"id": gid, "n": 5}, owner.token)
    chat = result["data"]["chat"]
    assert chat["id"] == gid
    assert chat["title"] == "looked ahead"
    texts = [e["node"]["parts"][0]["text"] for e in chat["messages"]["edges"]]
    assert texts == ["m2", "m3", "m4", "m5", "m6"]
    assert chat["messages"]["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}
    assert len(sent) == 1, sent

    older = chat["messages"]["edges"][0]["cursor"]
    result, sent = await _counted(gql, PAGE, {"id": gid, "n": 5, "before": older}, owner.token)
    texts = [e["node"]["parts"][0]["text"] for e in result["data"]["chat"]["messages"]["edges"]]
    assert texts == ["m0", "m1"]
    assert len(sent) == 1


async def test_another_members_chat_stays_null_in_one_statement(gql: GraphQLClient) -> None:
    owner, stranger = await new_person("owner"), await new_person("stranger")
    gid = await _chat(owner, 3)
    result, sent = await _counted(gql, PAGE, {"id": gid, "n": 5}, stranger.token)
    assert result["data"] == {"chat": None}
    assert "errors" not in result
    assert len(sent) == 1


async def test_an_empty_history_still_answers_the_chat(gql: GraphQLClient) -> None:
    owner = await new_person("empty")
    gid = await _chat(owner, 0)
    result, sent = await _counted(gql, PAGE, {"id": gid, "n": 5}, owner.token)
    chat = result["data"]["chat"]
    assert chat["title"] == "looked ahead"
    assert chat["messages"]["edges"] == []
    assert chat["messages"]["pageInfo"] == {"hasPreviousPage": False, "hasNextPage": False}
    assert len(sent) == 1


async def test_history_selected_through_fragments_is_read_ahead_too(gql: GraphQLClient) -> None:
    owner = await new_person("fragments")
    gid = await _chat(owner, 4)
    query = """query($id: ID!) { chat(id: $id) { ...History } }
      fragment History on Chat { ... on Chat { messages(last: 2) { nodes { id } } } }"""
    result, sent = await _counted(gql, query, {"id": gid}, owner.token)
    assert len(result["data"]["chat"]["messages"]["nodes"]) == 2
    assert len(sent) == 1


async def test_two_differently_sized_pages_both_answer(gql: GraphQLClient) -> None:
    owner = await new_person("aliases")
    gid = await _chat(owner, 6)
    query = """query($id: ID!) { chat(id: $id) {
      recent: messages(last: 2) { nodes { id } } early: messages(first: 3) { nodes { id } } } }"""
    result, sent = await _counted(gql, query, {"id": gid}, owner.token)
    chat = result["data"]["chat"]
    assert len(chat["recent"]["nodes"]) == 2
    assert len(chat["early"]["nodes"]) == 3
    assert chat["recent"]["nodes"][-1] != chat["early"]["nodes"][-1]
    assert len(sent) == 2  # one page read ahead with the chat, the other on its own


async def test_a_bad_cursor_is_still_reported_by_the_messages_field(gql: GraphQLClient) -> None:
    owner = await new_person("cursor")
    gid = await _chat(owner, 2)
    result, _ = await _counted(gql, PAGE, {"id": gid, "n": 5, "before": "nope"}, owner.token)
    (error,) = result["errors"]
    assert error["path"] == ["chat", "messages"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert result["data"] == {"chat": None}  # messages is non-null: the chat is nulled


async def test_a_negative_size_is_reported_as_before(gql: GraphQLClient) -> None:
    owner = await new_person("negative")
    gid = await _chat(owner, 2)
    result, _ = await _counted(gql, PAGE, {"id": gid, "n": -1}, owner.token)
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "last"
