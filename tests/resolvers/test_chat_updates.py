"""Renaming and labelling a chat: what lists show is what was meant.

Titles and label values lose bidirectional overrides (which make "gnp.exe" read
as "exe.png") and control characters, on every way in: ``updateChat``, the
labels of ``createChat`` and the fallback title of a new chat.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from db.models import Chat
from resolvers import global_id
from tests.harness import GraphQLClient, Person, new_person

CREATE = """
mutation($input: CreateChatInput!) { createChat(input: $input) { chat { id title labels } } }"""
UPDATE = """
mutation($input: UpdateChatInput!) { updateChat(input: $input) { id title labels } }"""
RLO = "\u202e"


@pytest.fixture
async def me(gql: GraphQLClient, admin_token: str) -> Person:
    return await new_person()


def key(chat_gid: str) -> uuid.UUID:
    decoded = global_id.decode(chat_gid)
    assert decoded is not None
    return uuid.UUID(decoded[1])


async def create(gql: GraphQLClient, me: Person, words: str = "hello", **extra: Any) -> Any:
    variables = {"input": {"content": [{"text": words}], **extra}}
    return (await gql.ok(CREATE, variables, token=me.token))["createChat"]["chat"]


async def update(gql: GraphQLClient, me: Person, chat_id: str, **changes: Any) -> Any:
    data = await gql.ok(UPDATE, {"input": {"id": chat_id, **changes}}, token=me.token)
    return data["updateChat"]


@pytest.mark.parametrize(
    "typed",
    [
        f"Invoice {RLO}gnp.exe",
        "Invoice \u2066gnp.exe\u2069",
        "Invoice \u200f\u200egnp.exe",
        "Invoice\tgnp.exe\n",
    ],
    ids=["override", "isolate", "marks", "whitespace-controls"],
)
async def test_a_rename_keeps_no_bidi_or_control_characters(
    gql: GraphQLClient, me: Person, typed: str
) -> None:
    created = await create(gql, me)
    renamed = await update(gql, me, created["id"], title=typed)
    assert renamed["title"] == "Invoice gnp.exe"
    assert (await Chat.get(id=key(created["id"]))).title == renamed["title"]


async def test_a_title_of_only_invisible_characters_is_refused(
    gql: GraphQLClient, me: Person
) -> None:
    created = await create(gql, me, "keep me")
    result = await gql(
        UPDATE, {"input": {"id": created["id"], "title": f"{RLO}\u2066"}}, token=me.token
    )
    assert result["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
    assert (await Chat.get(id=key(created["id"]))).title == "keep me"


async def test_labels_lose_bidi_and_control_characters(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me, labels={"team": f"red{RLO}der", "kind": "a\tb"})
    assert created["labels"] == {"team": "redder", "kind": "a b"}
    changed = await update(gql, me, created["id"], labels={"team": f"{RLO}blue"})
    assert changed["labels"] == {"team": "blue"}
    assert (await Chat.get(id=key(created["id"]))).labels == {"team": "blue"}


async def test_the_fallback_title_keeps_no_bidi_characters(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me, f"open {RLO}fdp.exe please")
    assert created["title"] == "open fdp.exe please"
