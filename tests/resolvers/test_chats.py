"""Chats: creating, reading, listing, changing, interrupting, reading state.

Every test works with its own freshly created users, so the module's shared
database never couples two tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatMessage, ChatQueuedMessage, User
from db.vocabulary import UNPINNED_RANK, ChatStatus, MessageRole, Visibility
from resolvers import global_id
from tests.harness import (
    GraphQLClient,
    Person,
    listening,
    new_person,
    nothing_more,
    received,
)

CHAT_FIELDS = """
fragment C on Chat {
  id title status archived pinOrder planMode labels hasUnread createdAt updatedAt
  owner { username }
  parent { id }
  children { id title archived status pinOrder }
}"""
PARTS = """
fragment P on MessagePart {
  __typename
  ... on TextPart { text }
  ... on FileReferencePart { fileName startLine endLine content }
}"""
CREATE = (
    """
mutation($input: CreateChatInput!) {
  createChat(input: $input) {
    chat { ...C messages { edges { node { id role parts { ...P } } } } }
    warnings
  }
}"""
    + CHAT_FIELDS
    + PARTS
)
CHAT = "query($id: ID!) { chat(id: $id) { ...C } }" + CHAT_FIELDS
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Chat { title } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
CHATS = """
query($first: Int, $after: String, $last: Int, $before: String, $query: String) {
  chats(first: $first, after: $after, last: $last, before: $before, query: $query) {
    edges { cursor node { id title pinOrder children { title } } }
    nodes { title }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
UPDATE = "mutation($input: UpdateChatInput!) { updateChat(input: $input) { ...C } }" + CHAT_FIELDS
INTERRUPT = "mutation($id: ID!) { interruptChat(id: $id) { id status } }"
MARK_READ = """
mutation($id: ID!) { markChatRead(input: {id: $id}) { chat { id hasUnread } warnings } }"""
SEND = """
mutation($id: ID!, $text: String!) {
  sendMessage(input: {chatId: $id, content: [{text: $text}]}) { queued }
}"""

BASE = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NOT_FOUND = {"code": "NOT_FOUND"}


# --- helpers -----------------------------------------------------------------


@pytest.fixture
async def me(gql: GraphQLClient, admin_token: str) -> Person:
    return await new_person()


@pytest.fixture
async def other(gql: GraphQLClient, admin_token: str) -> Person:
    return await new_person()


def gid(chat: Chat) -> str:
    return global_id.encode("Chat", chat.id)


def key(chat_gid: str) -> uuid.UUID:
    decoded = global_id.decode(chat_gid)
    assert decoded is not None
    return uuid.UUID(decoded[1])


def text(value: str) -> dict[str, Any]:
    return {"text": value}


async def create(gql: GraphQLClient, person: Person, words: str = "hello", **extra: Any) -> Any:
    data = await gql.ok(CREATE, {"input": {"content": [text(words)], **extra}}, token=person.token)
    return data["createChat"]["chat"]


async def add_chat(
    owner: Person,
    title: str,
    *,
    minutes: int = 0,
    pin: int = 0,
    archived: bool = False,
    status: ChatStatus = ChatStatus.WAITING,
    parent: Chat | None = None,
    labels: dict[str, str] | None = None,
    worker: bool = False,
) -> Chat:
    """A chat row written directly, with a chosen place in the list order."""
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id,
        owner_id=owner.user.id,
        parent_id=None if parent is None else parent.id,
        root_id=chat_id if parent is None else parent.root_id,
        title=title,
        status=status,
        archived=archived,
        pin_order=pin,
        list_rank=pin or UNPINNED_RANK,
        labels=labels or {},
        worker_id=uuid.uuid4() if worker else None,
        updated_at=BASE + timedelta(minutes=minutes),
    )


async def listing(gql: GraphQLClient, person: Person, **args: Any) -> dict[str, Any]:
    data = await gql.ok(CHATS, args, token=person.token)
    connection: dict[str, Any] = data["chats"]
    titles = [e["node"]["title"] for e in connection["edges"]]
    assert [n["title"] for n in connection["nodes"]] == titles
    info = connection["pageInfo"]
    if titles:
        assert info["startCursor"] == connection["edges"][0]["cursor"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
    else:
        assert (info["startCursor"], info["endCursor"]) == (None, None)
    return connection


async def titles(gql: GraphQLClient, person: Person, query: str | None = None) -> list[str]:
    connection = await listing(gql, person, query=query)
    return [e["node"]["title"] for e in connection["edges"]]


async def update(gql: GraphQLClient, person: Person, chat_gid: str, **changes: Any) -> Any:
    data = await gql.ok(UPDATE, {"input": {"id": chat_gid, **changes}}, token=person.token)
    return data["updateChat"]


async def update_error(gql: GraphQLClient, person: Person, chat_gid: str, **changes: Any) -> Any:
    return await gql.error(UPDATE, {"input": {"id": chat_gid, **changes}}, token=person.token)


async def pins(person: Person) -> dict[str, int]:
    rows = await Chat.filter(owner_id=person.user.id, pin_order__gt=0).order_by("pin_order")
    assert [r.list_rank for r in rows] == [r.pin_order for r in rows]
    return {r.title: r.pin_order for r in rows}


async def snapshot(chat_id: uuid.UUID) -> dict[str, Any]:
    """Everything a mutation could change about a chat."""
    row = await Chat.get(id=chat_id)
    return {
        "row": (
            row.title,
            row.status,
            row.archived,
            row.pin_order,
            row.list_rank,
            row.labels,
            row.plan_mode,
            row.last_read_message_id,
            row.updated_at,
            row.worker_id,
        ),
        "messages": await ChatMessage.filter(chat_id=chat_id)
        .order_by("id")
        .values_list("id", "deleted"),
        "queue": await ChatQueuedMessage.filter(chat_id=chat_id).values_list("id", flat=True),
    }


def assert_bad_input(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert error["message"].startswith(f"{field}: "), error


# --- createChat ----------------------------------------------------------------


async def test_create_chat_starts_pending_with_the_first_message(
    gql: GraphQLClient, me: Person
) -> None:
    data = await gql.ok(CREATE, {"input": {"content": [text("Hello there")]}}, token=me.token)
    payload = data["createChat"]
    chat = payload["chat"]
    assert payload["warnings"] == []
    assert chat["status"] == "PENDING"
    assert chat["title"] == "Hello there"
    assert (chat["archived"], chat["pinOrder"], chat["planMode"]) == (False, 0, False)
    assert (chat["labels"], chat["hasUnread"]) == ({}, False)
    assert chat["owner"] == {"username": me.user.username}
    assert (chat["parent"], chat["children"]) == (None, [])
    [message] = [e["node"] for e in chat["messages"]["edges"]]
    assert message["role"] == "USER"
    assert message["parts"] == [{"__typename": "TextPart", "text": "Hello there"}]

    row = await Chat.get(id=key(chat["id"]))
    assert row.root_id == row.id
    assert row.parent_id is None  # type: ignore[attr-defined]
    assert await titles(gql, me) == ["Hello there"]


async def test_created_chat_payload_matches_the_stored_chat(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me)
    stored = (await gql.ok(CHAT, {"id": created["id"]}, token=me.token))["chat"]
    assert created["updatedAt"] == stored["updatedAt"]


SEVEN = "fix the flaky login test please now"
LONG_WORD = "x" * 20


@pytest.mark.parametrize(
    ("content", "title"),
    [
        pytest.param(
            [text("one two three four five six")], "one two three four five six", id="six-words"
        ),
        pytest.param([text(SEVEN)], "fix the flaky login test please…", id="seven-words"),
        pytest.param([text("  spaced \n\t out   words ")], "spaced out words", id="whitespace"),
        pytest.param([text("one two"), text("three")], "one two three", id="text-parts-joined"),
        pytest.param(
            [{"fileReference": {"fileName": "main.go"}}], "New Chat", id="only-file-reference"
        ),
        pytest.param(
            [{"fileReference": {"fileName": "a.py", "startLine": 1}}, text("explain this")],
            "explain this",
            id="reference-then-text",
        ),
    ],
)
async def test_fallback_title(
    gql: GraphQLClient, me: Person, content: list[dict[str, Any]], title: str
) -> None:
    data = await gql.ok(CREATE, {"input": {"content": content}}, token=me.token)
    assert data["createChat"]["chat"]["title"] == title


async def test_fallback_title_is_capped_at_80_characters(gql: GraphQLClient, me: Person) -> None:
    words = " ".join([LONG_WORD] * 8)  # six words alone are 125 characters
    chat = await create(gql, me, words)
    assert len(chat["title"]) <= 80
    assert chat["title"].endswith("…")
    assert chat["title"].startswith(f"{LONG_WORD} {LONG_WORD} ")
    single = await create(gql, me, "y" * 300)
    assert single["title"] == "y" * 79 + "…"


async def test_create_chat_with_labels_and_plan_mode(gql: GraphQLClient, me: Person) -> None:
    labels = {"team": "core", "ci/run.id-1_x": "yes", "Z9": ""}
    chat = await create(gql, me, labels=labels, planMode=True)
    assert (chat["labels"], chat["planMode"]) == (labels, True)
    row = await Chat.get(id=key(chat["id"]))
    assert (row.labels, row.plan_mode) == (labels, True)


async def test_label_limits_are_inclusive(gql: GraphQLClient, me: Person) -> None:
    labels = {f"k{i}": "v" for i in range(49)}
    labels["k" * 64] = "v" * 256
    chat = await create(gql, me, labels=labels)
    assert chat["labels"] == labels


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param({f"k{i}": "v" for i in range(51)}, id="51-labels"),
        pytest.param({"-team": "x"}, id="key-starts-with-dash"),
        pytest.param({"_team": "x"}, id="key-starts-with-underscore"),
        pytest.param({"has space": "x"}, id="key-with-space"),
        pytest.param({"ünï": "x"}, id="key-not-ascii"),
        pytest.param({"": "x"}, id="empty-key"),
        pytest.param({"k" * 65: "x"}, id="key-65-chars"),
        pytest.param({"team": "v" * 257}, id="value-257-chars"),
        pytest.param({"team": 1}, id="value-number"),
        pytest.param({"team": None}, id="value-null"),
        pytest.param({"team": ["a"]}, id="value-list"),
        pytest.param(["team"], id="not-an-object"),
        pytest.param("team=core", id="a-string"),
        pytest.param({"team\n": "x"}, id="key-with-trailing-newline"),
    ],
)
async def test_bad_labels_are_refused_and_nothing_is_written(
    gql: GraphQLClient, me: Person, labels: Any
) -> None:
    error = await gql.error(
        CREATE, {"input": {"content": [text("hi")], "labels": labels}}, token=me.token
    )
    assert_bad_input(error, "labels")
    assert await Chat.filter(owner_id=me.user.id).count() == 0


async def test_system_prompt_is_kept_for_the_model_only(gql: GraphQLClient, me: Person) -> None:
    chat = await create(gql, me, "Hi", systemPrompt="You are terse.")
    assert [e["node"]["role"] for e in chat["messages"]["edges"]] == ["USER"]
    rows = await ChatMessage.filter(chat_id=key(chat["id"])).order_by("id")
    assert [(r.role, r.visibility) for r in rows] == [
        (MessageRole.SYSTEM, Visibility.MODEL),
        (MessageRole.USER, Visibility.BOTH),
    ]
    assert rows[0].parts == [{"type": "text", "text": "You are terse."}]
    assert (await Chat.get(id=key(chat["id"]))).system_prompt == "You are terse."
    data = await gql.ok(NODE, {"id": global_id.encode("Message", rows[0].id)}, token=me.token)
    assert data["node"] is None
    fetched = await gql.ok(
        "query($id: ID!) { chat(id: $id) { messages { edges { node { role } } } } }",
        {"id": chat["id"]},
        token=me.token,
    )
    assert fetched["chat"]["messages"]["edges"] == [{"node": {"role": "USER"}}]


async def test_system_prompt_length_limit(gql: GraphQLClient, me: Person) -> None:
    chat = await create(gql, me, systemPrompt="p" * 10_000)
    assert chat["status"] == "PENDING"
    error = await gql.error(
        CREATE,
        {"input": {"content": [text("hi")], "systemPrompt": "p" * 10_001}},
        token=me.token,
    )
    assert_bad_input(error, "systemPrompt")
    assert await Chat.filter(owner_id=me.user.id).count() == 1


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"content": []}, "content", id="no-parts"),
        pytest.param({"content": [{}]}, "content[0]", id="empty-part"),
        pytest.param(
            {"content": [{"text": "a", "fileReference": {"fileName": "x"}}]},
            "content[0]",
            id="two-fields-in-a-part",
        ),
        pytest.param({"content": [{"text": "   "}]}, "content[0].text", id="blank-text"),
        pytest.param({"content": [{"text": ""}]}, "content[0].text", id="empty-text"),
        pytest.param(
            {"content": [text("ok"), {"text": "\n"}]}, "content[1].text", id="second-part-blank"
        ),
        pytest.param({"content": [text("ok"), {}]}, "content[1]", id="second-part-empty"),
        pytest.param({"content": [{"fileId": "garbage"}]}, "content[0].fileId", id="bad-file-id"),
        pytest.param(
            {"content": [{"fileReference": {"fileName": "  "}}]},
            "content[0].fileReference.fileName",
            id="blank-file-name",
        ),
        pytest.param(
            {"content": [{"fileReference": {"fileName": "a.py", "startLine": 0}}]},
            "content[0].fileReference.startLine",
            id="line-zero",
        ),
        pytest.param(
            {"content": [{"fileReference": {"fileName": "a.py", "startLine": 5, "endLine": 4}}]},
            "content[0].fileReference.endLine",
            id="end-before-start",
        ),
        pytest.param({"modelConfigId": "garbage"}, "modelConfigId", id="bad-model-config"),
        pytest.param(
            {"workspaceId": global_id.encode("User", uuid.UUID(int=7))},
            "workspaceId",
            id="workspace-id-of-a-user",
        ),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    gql: GraphQLClient, me: Person, extra: dict[str, Any], field: str
) -> None:
    error = await gql.error(CREATE, {"input": {"content": [text("hi")], **extra}}, token=me.token)
    assert_bad_input(error, field)
    assert await Chat.filter(owner_id=me.user.id).count() == 0


async def test_create_chat_needs_a_signed_in_user(gql: GraphQLClient, admin_token: str) -> None:
    before = await Chat.all().count()
    error = await gql.error(CREATE, {"input": {"content": [text("hi")]}})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert await Chat.all().count() == before


async def test_failure_after_the_chat_row_leaves_nothing(
    gql: GraphQLClient, me: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ChatMessage, "create", broken)
    result = await gql(CREATE, {"input": {"content": [text("hi")]}}, token=me.token)
    assert result["data"] is None
    [error] = result["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await Chat.filter(owner_id=me.user.id).count() == 0


# --- chat(id) and node(id) ------------------------------------------------------


async def test_chat_by_id(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me, "find me")
    data = await gql.ok(CHAT, {"id": created["id"]}, token=me.token)
    assert data["chat"]["title"] == "find me"
    assert data["chat"]["id"] == created["id"]
    node = await gql.ok(NODE, {"id": created["id"]}, token=me.token)
    assert node["node"] == {"__typename": "Chat", "id": created["id"], "title": "find me"}


async def test_missing_chat_is_null(gql: GraphQLClient, me: Person) -> None:
    missing = global_id.encode("Chat", uuid.uuid4())
    assert await gql.ok(CHAT, {"id": missing}, token=me.token) == {"chat": None}
    assert await gql.ok(NODE, {"id": missing}, token=me.token) == {"node": None}


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("garbage!", id="not-base64"),
        pytest.param(global_id.encode("User", uuid.UUID(int=7)), id="a-user-id"),
        pytest.param(global_id.encode("Chat", "not-a-uuid"), id="key-not-a-uuid"),
        pytest.param(global_id.encode("Chat", 42), id="key-a-number"),
    ],
)
async def test_malformed_chat_id_names_the_field(
    gql: GraphQLClient, me: Person, bad_id: str
) -> None:
    assert_bad_input(await gql.error(CHAT, {"id": bad_id}, token=me.token), "id")


async def test_signed_out_node_is_null(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me)
    assert await gql.ok(NODE, {"id": created["id"]}) == {"node": None}


async def test_signed_out_chat_is_null(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me)
    assert await gql.ok(CHAT, {"id": created["id"]}) == {"chat": None}


async def test_bad_token_chat_is_an_error(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me)
    error = await gql.error(CHAT, {"id": created["id"]}, token="agq_not-a-real-token")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_parent_and_children(gql: GraphQLClient, me: Person) -> None:
    root = await add_chat(me, "root")
    first = await add_chat(me, "first child", parent=root)
    second = await add_chat(me, "second child", parent=root)
    grandchild = await add_chat(me, "grandchild", parent=first)
    data = await gql.ok(CHAT, {"id": gid(root)}, token=me.token)
    assert [c["title"] for c in data["chat"]["children"]] == ["first child", "second child"]
    assert data["chat"]["parent"] is None
    data = await gql.ok(CHAT, {"id": gid(first)}, token=me.token)
    assert data["chat"]["parent"] == {"id": gid(root)}
    assert [c["title"] for c in data["chat"]["children"]] == ["grandchild"]
    assert grandchild.root_id == root.id
    assert second.root_id == root.id


# --- chats: order and filters -------------------------------------------------------


async def test_list_order_pins_first_then_most_recent_then_id(
    gql: GraphQLClient, me: Person
) -> None:
    await add_chat(me, "old", minutes=1)
    tied = [await add_chat(me, f"tied {i}", minutes=5) for i in range(3)]
    await add_chat(me, "new", minutes=9)
    await add_chat(me, "pinned second", minutes=0, pin=2)
    await add_chat(me, "pinned first", minutes=2, pin=1)
    by_id = [c.title for c in sorted(tied, key=lambda c: c.id, reverse=True)]
    assert await titles(gql, me) == ["pinned first", "pinned second", "new", *by_id, "old"]


async def test_a_new_message_moves_a_chat_to_the_top(gql: GraphQLClient, me: Person) -> None:
    older = await create(gql, me, "older")
    await create(gql, me, "newer")
    assert await titles(gql, me) == ["newer", "older"]
    await Chat.filter(id=key(older["id"])).update(status=ChatStatus.WAITING)
    await gql.ok(SEND, {"id": older["id"], "text": "again"}, token=me.token)
    assert await titles(gql, me) == ["older", "newer"]


async def test_only_roots_are_listed_each_with_its_children(gql: GraphQLClient, me: Person) -> None:
    root = await add_chat(me, "root", minutes=1)
    await add_chat(me, "child a", parent=root, minutes=50)
    await add_chat(me, "child b", parent=root, minutes=60)
    await add_chat(me, "lonely", minutes=2)
    connection = await listing(gql, me)
    assert [(e["node"]["title"], e["node"]["children"]) for e in connection["edges"]] == [
        ("lonely", []),
        ("root", [{"title": "child a"}, {"title": "child b"}]),
    ]


async def test_archived_filter(gql: GraphQLClient, me: Person) -> None:
    await add_chat(me, "live", minutes=2)
    await add_chat(me, "shelved", minutes=1, archived=True)
    assert await titles(gql, me) == ["live"]
    assert await titles(gql, me, "archived:false") == ["live"]
    assert await titles(gql, me, "archived:true") == ["shelved"]
    assert await titles(gql, me, "archived:any") == ["live", "shelved"]
    assert await titles(gql, me, "ARCHIVED:Any") == ["live", "shelved"]


async def test_status_filter(gql: GraphQLClient, me: Person) -> None:
    for minutes, status in enumerate(ChatStatus):
        await add_chat(me, status.value, minutes=minutes, status=status)
    assert await titles(gql, me, "status:pending") == ["pending"]
    assert await titles(gql, me, "status:PENDING") == ["pending"]
    assert await titles(gql, me, "Status:Requires_Action") == ["requires_action"]
    assert await titles(gql, me, "status:waiting status:error") == ["error", "waiting"]
    await add_chat(me, "old pending", status=ChatStatus.PENDING, archived=True)
    assert await titles(gql, me, "status:pending archived:any") == ["pending", "old pending"]


async def test_title_filter(gql: GraphQLClient, me: Person) -> None:
    await add_chat(me, "Fix the login bug", minutes=3)
    await add_chat(me, "fix THE build", minutes=2)
    await add_chat(me, "fixture cleanup", minutes=1)
    await add_chat(me, "Raise limit to 100%", minutes=0)
    await add_chat(me, "snake_case", minutes=4)
    await add_chat(me, "snakeXcase", minutes=5)
    assert await titles(gql, me, "title:fix") == [
        "Fix the login bug",
        "fix THE build",
        "fixture cleanup",
    ]
    assert await titles(gql, me, 'title:"fix the"') == ["Fix the login bug", "fix THE build"]
    assert await titles(gql, me, "title:'FIX THE B'") == ["fix THE build"]
    assert await titles(gql, me, "title:100%") == ["Raise limit to 100%"]
    assert await titles(gql, me, "title:e_c") == ["snake_case"]  # "_" is no wildcard
    assert await titles(gql, me, "title:nothing-like-this") == []


async def test_unquoted_words_after_title_are_bare_terms(gql: GraphQLClient, me: Person) -> None:
    error = await gql.error(CHATS, {"query": "title:fix the"}, token=me.token)
    assert_bad_input(error, "query")
    assert "'the'" in error["message"]


async def test_has_unread_filter(gql: GraphQLClient, me: Person) -> None:
    never = await add_chat(me, "no reply yet", minutes=1)
    unread = await add_chat(me, "unread reply", minutes=2)
    read = await add_chat(me, "read reply", minutes=3)
    for chat in (unread, read):
        await ChatMessage.create(chat_id=chat.id, role=MessageRole.ASSISTANT, parts=[])
    await gql.ok(MARK_READ, {"id": gid(read)}, token=me.token)
    assert never.last_assistant_message_id is None
    assert await titles(gql, me, "has_unread:true") == ["unread reply"]
    assert await titles(gql, me, "has_unread:false") == ["read reply", "no reply yet"]
    assert await titles(gql, me, "HAS_UNREAD:TRUE") == ["unread reply"]


async def test_label_filter(gql: GraphQLClient, me: Person) -> None:
    await add_chat(me, "core prod", minutes=4, labels={"team": "core", "env": "prod"})
    await add_chat(me, "core dev", minutes=3, labels={"team": "core", "env": "dev"})
    await add_chat(me, "web prod", minutes=2, labels={"team": "web", "env": "prod"})
    await add_chat(me, "formula", minutes=1, labels={"expr": "a=b", "note": "two words"})
    await add_chat(me, "unlabelled", minutes=0)
    assert await titles(gql, me, "label:team=core") == ["core prod", "core dev"]
    assert await titles(gql, me, "label:team=core label:env=prod") == ["core prod"]
    assert await titles(gql, me, "label:env=prod label:team=web") == ["web prod"]
    assert await titles(gql, me, "label:team=CORE") == []  # values match exactly
    assert await titles(gql, me, "label:expr=a=b") == ["formula"]
    assert await titles(gql, me, 'label:note="two words"') == ["formula"]
    assert await titles(gql, me, "label:missing=x") == []


async def test_repeated_label_key_means_both_must_match(gql: GraphQLClient, me: Person) -> None:
    await add_chat(me, "core", labels={"team": "core"})
    assert await titles(gql, me, "label:team=web label:team=core") == []


async def test_filters_combine(gql: GraphQLClient, me: Person) -> None:
    await add_chat(me, "deploy a", minutes=4, status=ChatStatus.ERROR, labels={"t": "x"})
    await add_chat(me, "deploy b", minutes=3, status=ChatStatus.ERROR, archived=True)
    await add_chat(me, "deploy c", minutes=2, status=ChatStatus.WAITING, labels={"t": "x"})
    await add_chat(me, "other", minutes=1, status=ChatStatus.ERROR, labels={"t": "x"})
    assert await titles(gql, me, "title:deploy status:error archived:any") == [
        "deploy a",
        "deploy b",
    ]
    assert await titles(gql, me, "title:deploy label:t=x") == ["deploy a", "deploy c"]
    assert await titles(gql, me, "status:error label:t=x has_unread:false") == [
        "deploy a",
        "other",
    ]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("colour:red", "'colour'"),
        ("pr_state:open", "'pr_state'"),  # an unknown key (pr_status is known)
        ("hello", "'hello'"),
        ("archived:false hello", "'hello'"),
        ("status:sleeping", "'sleeping'"),
        ("archived:maybe", "'maybe'"),
        ("has_unread:yes", "'yes'"),
        ("label:team", "'team'"),
        ("title:", "title"),
        ('title:"unbalanced', "cannot parse"),
    ],
)
async def test_bad_query_is_refused_naming_the_term(
    gql: GraphQLClient, me: Person, query: str, named: str
) -> None:
    error = await gql.error(CHATS, {"query": query}, token=me.token)
    assert_bad_input(error, "query")
    assert named in error["message"]


async def test_chats_needs_a_signed_in_user(gql: GraphQLClient, admin_token: str) -> None:
    error = await gql.error(CHATS)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


# --- chats: pages -----------------------------------------------------------------


async def seven_chats(me: Person) -> list[str]:
    """Two pinned and five unpinned chats; the titles in list order."""
    await add_chat(me, "p2", pin=2, minutes=100)
    await add_chat(me, "p1", pin=1, minutes=0)
    for i in range(5):
        await add_chat(me, f"c{i}", minutes=50 - i)
    return ["p1", "p2", "c0", "c1", "c2", "c3", "c4"]


def page_titles(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["title"] for e in connection["edges"]]


def flags(connection: dict[str, Any]) -> tuple[bool, bool]:
    info = connection["pageInfo"]
    return info["hasPreviousPage"], info["hasNextPage"]


async def test_pages_forward_to_the_end(gql: GraphQLClient, me: Person) -> None:
    order = await seven_chats(me)
    first = await listing(gql, me, first=3)
    assert (page_titles(first), flags(first)) == (order[:3], (False, True))
    second = await listing(gql, me, first=3, after=first["pageInfo"]["endCursor"])
    assert (page_titles(second), flags(second)) == (order[3:6], (True, True))
    third = await listing(gql, me, first=3, after=second["pageInfo"]["endCursor"])
    assert (page_titles(third), flags(third)) == (order[6:], (True, False))
    beyond = await listing(gql, me, first=3, after=third["pageInfo"]["endCursor"])
    assert (page_titles(beyond), beyond["pageInfo"]["hasNextPage"]) == ([], False)


async def test_pages_backward_to_the_start(gql: GraphQLClient, me: Person) -> None:
    order = await seven_chats(me)
    last = await listing(gql, me, last=3)
    assert (page_titles(last), flags(last)) == (order[4:], (True, False))
    second = await listing(gql, me, last=3, before=last["pageInfo"]["startCursor"])
    assert (page_titles(second), flags(second)) == (order[1:4], (True, True))
    third = await listing(gql, me, last=3, before=second["pageInfo"]["startCursor"])
    assert (page_titles(third), flags(third)) == (order[:1], (False, True))
    beyond = await listing(gql, me, last=3, before=third["pageInfo"]["startCursor"])
    assert (page_titles(beyond), beyond["pageInfo"]["hasPreviousPage"]) == ([], False)


async def test_page_cursors_match_a_single_page(gql: GraphQLClient, me: Person) -> None:
    await seven_chats(me)
    whole = await listing(gql, me)
    cursors = [e["cursor"] for e in whole["edges"]]
    middle = await listing(gql, me, after=cursors[1], before=cursors[5])
    assert [e["cursor"] for e in middle["edges"]] == cursors[2:5]
    assert flags(whole) == (False, False)


async def test_empty_list(gql: GraphQLClient, me: Person) -> None:
    connection = await listing(gql, me)
    assert (connection["edges"], flags(connection)) == ([], (False, False))
    zero = await listing(gql, me, first=0)
    assert zero["edges"] == []


async def test_default_page_is_50_and_maximum_200(gql: GraphQLClient, me: Person) -> None:
    await Chat.bulk_create(
        [
            Chat(
                id=(chat_id := uuid.uuid4()),
                owner_id=me.user.id,
                root_id=chat_id,
                title=f"bulk {i}",
                updated_at=BASE + timedelta(seconds=i),
            )
            for i in range(205)
        ]
    )
    default = await listing(gql, me)
    assert len(default["edges"]) == 50
    assert flags(default) == (False, True)
    assert page_titles(default)[0] == "bulk 204"
    clamped = await listing(gql, me, first=1000)
    assert len(clamped["edges"]) == 200
    assert flags(clamped) == (False, True)
    rest = await listing(gql, me, first=200, after=clamped["pageInfo"]["endCursor"])
    assert page_titles(rest) == [f"bulk {i}" for i in range(4, -1, -1)]
    clamped_back = await listing(gql, me, last=201)
    assert len(clamped_back["edges"]) == 200
    assert page_titles(clamped_back)[-1] == "bulk 0"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"first": -1}, "first"),
        ({"last": -1}, "last"),
        ({"first": 1, "last": 1}, "last"),
        ({"after": "not-a-cursor"}, "after"),
        ({"before": "not-a-cursor"}, "before"),
        ({"after": "WzFd"}, "after"),  # base64url of [1]: a message cursor
    ],
)
async def test_bad_page_arguments(
    gql: GraphQLClient, me: Person, args: dict[str, Any], field: str
) -> None:
    assert_bad_input(await gql.error(CHATS, args, token=me.token), field)


# --- updateChat ---------------------------------------------------------------------


async def test_rename_trims_and_keeps_updated_at(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me, "first words")
    stored = (await gql.ok(CHAT, {"id": created["id"]}, token=me.token))["chat"]
    renamed = await update(gql, me, created["id"], title="  Better name \n")
    assert renamed["title"] == "Better name"
    assert renamed["updatedAt"] == stored["updatedAt"]
    longest = await update(gql, me, created["id"], title="t" * 200)
    assert longest["title"] == "t" * 200


@pytest.mark.parametrize("title", ["", "   ", "\n\t", "t" * 201, None])
async def test_bad_titles(gql: GraphQLClient, me: Person, title: str | None) -> None:
    created = await create(gql, me, "keep me")
    assert_bad_input(await update_error(gql, me, created["id"], title=title), "title")
    assert (await Chat.get(id=key(created["id"]))).title == "keep me"


async def test_labels_replace_the_whole_map(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me, labels={"a": "1", "b": "2"})
    assert (await update(gql, me, created["id"], labels={"c": "3"}))["labels"] == {"c": "3"}
    assert (await update(gql, me, created["id"], labels={}))["labels"] == {}
    await update(gql, me, created["id"], labels={"d": "4"})
    error = await update_error(gql, me, created["id"], labels={"bad key": "x"})
    assert_bad_input(error, "labels")
    assert (await Chat.get(id=key(created["id"]))).labels == {"d": "4"}


async def test_only_given_fields_change(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me, "stay", labels={"a": "1"}, planMode=True)
    same = await update(gql, me, created["id"])
    assert (same["title"], same["labels"], same["planMode"]) == ("stay", {"a": "1"}, True)


async def test_plan_mode_toggles(gql: GraphQLClient, me: Person) -> None:
    created = await create(gql, me)
    assert (await update(gql, me, created["id"], planMode=True))["planMode"] is True
    assert (await update(gql, me, created["id"], planMode=False))["planMode"] is False
    assert_bad_input(await update_error(gql, me, created["id"], planMode=None), "planMode")


async def test_new_pins_go_last_whatever_number_is_asked(gql: GraphQLClient, me: Person) -> None:
    a, b, c = [await add_chat(me, t, minutes=i) for i, t in enumerate("abc")]
    assert (await update(gql, me, gid(a), pinOrder=5))["pinOrder"] == 1
    assert (await update(gql, me, gid(b), pinOrder=1))["pinOrder"] == 2
    assert (await update(gql, me, gid(c), pinOrder=1))["pinOrder"] == 3
    assert await pins(me) == {"a": 1, "b": 2, "c": 3}
    assert await titles(gql, me) == ["a", "b", "c"]


async def test_existing_pins_move_to_the_clamped_position(gql: GraphQLClient, me: Person) -> None:
    a, b, c, _ = [await add_chat(me, t, minutes=i) for i, t in enumerate("abcd")]
    for chat in (a, b, c):
        await update(gql, me, gid(chat), pinOrder=1)
    assert (await update(gql, me, gid(c), pinOrder=1))["pinOrder"] == 1
    assert await pins(me) == {"c": 1, "a": 2, "b": 3}
    assert (await update(gql, me, gid(c), pinOrder=99))["pinOrder"] == 3
    assert await pins(me) == {"a": 1, "b": 2, "c": 3}
    assert (await update(gql, me, gid(b), pinOrder=2))["pinOrder"] == 2
    assert await pins(me) == {"a": 1, "b": 2, "c": 3}
    assert (await update(gql, me, gid(a), pinOrder=2))["pinOrder"] == 2
    assert await pins(me) == {"b": 1, "a": 2, "c": 3}
    assert await titles(gql, me) == ["b", "a", "c", "d"]


async def test_unpinning_compacts_the_rest(gql: GraphQLClient, me: Person) -> None:
    chats = [await add_chat(me, t, minutes=i) for i, t in enumerate("abcd")]
    for chat in chats:
        await update(gql, me, gid(chat), pinOrder=1)
    assert (await update(gql, me, gid(chats[1]), pinOrder=0))["pinOrder"] == 0
    assert await pins(me) == {"a": 1, "c": 2, "d": 3}
    await update(gql, me, gid(chats[0]), pinOrder=0)
    assert await pins(me) == {"c": 1, "d": 2}
    assert (await Chat.get(id=chats[0].id)).list_rank == UNPINNED_RANK
    assert await titles(gql, me) == ["c", "d", "b", "a"]
    unpinned_again = await update(gql, me, gid(chats[0]), pinOrder=0)
    assert unpinned_again["pinOrder"] == 0
    assert await pins(me) == {"c": 1, "d": 2}


async def test_negative_pin_order_is_refused(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me, "x")
    assert_bad_input(await update_error(gql, me, gid(chat), pinOrder=-1), "pinOrder")
    assert await pins(me) == {}


async def test_archiving_cascades_over_the_family(gql: GraphQLClient, me: Person) -> None:
    root = await add_chat(me, "root", pin=1, status=ChatStatus.PENDING, minutes=3)
    running = await add_chat(
        me, "running child", parent=root, status=ChatStatus.RUNNING, worker=True
    )
    grandchild = await add_chat(me, "grandchild", parent=running, status=ChatStatus.ERROR)
    bystander = await add_chat(me, "bystander", status=ChatStatus.RUNNING, minutes=1)

    archived = await update(gql, me, gid(root), archived=True)
    assert (archived["archived"], archived["pinOrder"], archived["status"]) == (
        True,
        0,
        "WAITING",
    )
    family = {c.title: c for c in await Chat.filter(root_id=root.id)}
    assert {t: (c.archived, c.pin_order, c.status) for t, c in family.items()} == {
        "root": (True, 0, ChatStatus.WAITING),
        "running child": (True, 0, ChatStatus.WAITING),
        "grandchild": (True, 0, ChatStatus.ERROR),
    }
    assert family["running child"].worker_id is None
    assert family["root"].list_rank == UNPINNED_RANK
    assert (await Chat.get(id=bystander.id)).status == ChatStatus.RUNNING
    assert grandchild.root_id == root.id

    assert await titles(gql, me) == ["bystander"]
    connection = await listing(gql, me, query="archived:true")
    assert [(e["node"]["title"], e["node"]["children"]) for e in connection["edges"]] == [
        ("root", [{"title": "running child"}])
    ]


async def test_archiving_a_child_archives_its_whole_family(gql: GraphQLClient, me: Person) -> None:
    root = await add_chat(me, "root")
    child = await add_chat(me, "child", parent=root)
    sibling = await add_chat(me, "sibling", parent=root)
    await update(gql, me, gid(child), archived=True)
    assert await Chat.filter(root_id=root.id, archived=True).count() == 3
    assert (await Chat.get(id=sibling.id)).archived


async def test_unarchiving_a_root_restores_the_family(gql: GraphQLClient, me: Person) -> None:
    root = await add_chat(me, "root")
    await add_chat(me, "child", parent=root)
    await update(gql, me, gid(root), archived=True)
    restored = await update(gql, me, gid(root), archived=False)
    assert restored["archived"] is False
    assert [c["archived"] for c in restored["children"]] == [False]
    assert await titles(gql, me) == ["root"]


async def test_archive_refusals(gql: GraphQLClient, me: Person) -> None:
    root = await add_chat(me, "root")
    child = await add_chat(me, "child", parent=root)
    assert_bad_input(await update_error(gql, me, gid(root), archived=False), "archived")
    await update(gql, me, gid(root), archived=True)
    assert_bad_input(await update_error(gql, me, gid(root), archived=True), "archived")
    assert_bad_input(await update_error(gql, me, gid(child), archived=True), "archived")
    error = await update_error(gql, me, gid(child), archived=False)
    assert_bad_input(error, "archived")
    assert (await Chat.get(id=child.id)).archived
    assert_bad_input(await update_error(gql, me, gid(root), pinOrder=1), "pinOrder")
    assert await pins(me) == {}


async def test_a_refused_change_undoes_the_others(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me, "before", status=ChatStatus.RUNNING, labels={"a": "1"})
    before = await snapshot(chat.id)
    error = await update_error(
        gql, me, gid(chat), title="after", labels={"b": "2"}, archived=True, pinOrder=1
    )
    assert_bad_input(error, "pinOrder")
    assert await snapshot(chat.id) == before


async def test_malformed_update_id(gql: GraphQLClient, me: Person) -> None:
    assert_bad_input(await update_error(gql, me, "nope", title="x"), "id")


# --- interruptChat ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "after"),
    [
        (ChatStatus.RUNNING, "INTERRUPTING"),  # until its worker has stopped the run
        (ChatStatus.PENDING, "WAITING"),
        (ChatStatus.WAITING, "WAITING"),
        (ChatStatus.ERROR, "ERROR"),
        (ChatStatus.REQUIRES_ACTION, "REQUIRES_ACTION"),
    ],
)
async def test_interrupt(gql: GraphQLClient, me: Person, status: ChatStatus, after: str) -> None:
    chat = await add_chat(me, "busy", status=status, worker=status == ChatStatus.RUNNING)
    data = await gql.ok(INTERRUPT, {"id": gid(chat)}, token=me.token)
    assert data["interruptChat"] == {"id": gid(chat), "status": after}
    row = await Chat.get(id=chat.id)
    assert row.status.name == after
    if status == ChatStatus.RUNNING:
        assert row.worker_id is not None  # still its worker's, to stop


# --- unread -------------------------------------------------------------------------


async def test_unread_follows_assistant_messages_and_the_read_cursor(
    gql: GraphQLClient, me: Person
) -> None:
    created = await create(gql, me)
    chat_id = key(created["id"])
    assert created["hasUnread"] is False

    async def has_unread() -> bool:
        data = await gql.ok(CHAT, {"id": created["id"]}, token=me.token)
        return bool(data["chat"]["hasUnread"])

    await ChatMessage.create(chat_id=chat_id, role=MessageRole.ASSISTANT, parts=[])
    assert await has_unread()
    data = await gql.ok(MARK_READ, {"id": created["id"]}, token=me.token)
    assert data["markChatRead"] == {
        "chat": {"id": created["id"], "hasUnread": False},
        "warnings": [],
    }
    assert not await has_unread()
    # a user message or a model-only message is nothing to read
    await ChatMessage.create(chat_id=chat_id, role=MessageRole.USER, parts=[])
    await ChatMessage.create(
        chat_id=chat_id, role=MessageRole.ASSISTANT, parts=[], visibility=Visibility.MODEL
    )
    assert not await has_unread()
    await ChatMessage.create(chat_id=chat_id, role=MessageRole.ASSISTANT, parts=[])
    assert await has_unread()
    await gql.ok(MARK_READ, {"id": created["id"]}, token=me.token)
    again = await gql.ok(MARK_READ, {"id": created["id"]}, token=me.token)
    assert again["markChatRead"]["chat"]["hasUnread"] is False


# --- another user's chat --------------------------------------------------------------


MUTATIONS = {
    "rename": (UPDATE, lambda chat: {"input": {"id": chat, "title": "stolen"}}),
    "relabel": (UPDATE, lambda chat: {"input": {"id": chat, "labels": {"x": "y"}}}),
    "pin": (UPDATE, lambda chat: {"input": {"id": chat, "pinOrder": 1}}),
    "archive": (UPDATE, lambda chat: {"input": {"id": chat, "archived": True}}),
    "plan-mode": (UPDATE, lambda chat: {"input": {"id": chat, "planMode": True}}),
    "interrupt": (INTERRUPT, lambda chat: {"id": chat}),
    "mark-read": (MARK_READ, lambda chat: {"id": chat}),
    "send": (SEND, lambda chat: {"id": chat, "text": "hi"}),
}


@pytest.fixture(params=["member", "admin"])
async def stranger(request: pytest.FixtureRequest, gql: GraphQLClient, admin_token: str) -> Person:
    if request.param == "admin":
        return Person(await User.get(username="admin"), admin_token)
    return await new_person()


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_another_users_chat_cannot_be_changed(
    gql: GraphQLClient, me: Person, stranger: Person, mutation: str
) -> None:
    created = await create(gql, me, "mine")
    chat_id = key(created["id"])
    await ChatMessage.create(chat_id=chat_id, role=MessageRole.ASSISTANT, parts=[])
    before = await snapshot(chat_id)
    document, variables = MUTATIONS[mutation]
    error = await gql.error(document, variables(created["id"]), token=stranger.token)
    assert error["extensions"] == NOT_FOUND
    assert error["message"] == "chat not found"
    assert await snapshot(chat_id) == before


async def test_another_users_chat_cannot_be_seen(
    gql: GraphQLClient, me: Person, stranger: Person
) -> None:
    created = await create(gql, me, "secret plans")
    assert await gql.ok(CHAT, {"id": created["id"]}, token=stranger.token) == {"chat": None}
    assert await gql.ok(NODE, {"id": created["id"]}, token=stranger.token) == {"node": None}
    assert await gql.ok(NODES, {"ids": [created["id"]]}, token=stranger.token) == {"nodes": [None]}
    assert await titles(gql, stranger, "title:secret archived:any") == []
    [message] = await ChatMessage.filter(chat_id=key(created["id"]))
    message_gid = global_id.encode("Message", message.id)
    assert await gql.ok(NODE, {"id": message_gid}, token=stranger.token) == {"node": None}


# --- events -------------------------------------------------------------------------


async def test_create_chat_announces_it(app: Starlette, gql: GraphQLClient, me: Person) -> None:
    async with listening(app, f"owner:{me.user.id}") as owner:
        created = await create(gql, me)
        chat_id = str(key(created["id"]))
        assert await received(owner, 2) == [
            {"kind": "created", "chatId": chat_id},
            {"kind": "status_changed", "chatId": chat_id},
        ]
        await nothing_more(owner)


async def test_rename_announces_the_title_once(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat = await add_chat(me, "old")
    async with listening(app, f"owner:{me.user.id}") as owner:
        await update(gql, me, gid(chat), title="new")
        await update(gql, me, gid(chat), title=" new ")  # unchanged after trimming
        await update(gql, me, gid(chat), labels={"a": "b"}, planMode=True)
        assert await received(owner, 1) == [{"kind": "title_changed", "chatId": str(chat.id)}]
        await nothing_more(owner)


async def test_archive_announces_every_family_member_and_stopped_turns(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    root = await add_chat(me, "root")
    child = await add_chat(me, "child", parent=root, status=ChatStatus.RUNNING, worker=True)
    async with (
        listening(app, f"owner:{me.user.id}") as owner,
        listening(app, f"chat:{child.id}") as child_channel,
    ):
        await update(gql, me, gid(root), archived=True)
        events = await received(owner, 3)
        assert sorted(events, key=lambda e: (e["kind"], e["chatId"])) == sorted(
            [
                {"kind": "archived", "chatId": str(root.id)},
                {"kind": "archived", "chatId": str(child.id)},
                {"kind": "status_changed", "chatId": str(child.id)},
            ],
            key=lambda e: (e["kind"], e["chatId"]),
        )
        assert events[-1]["kind"] == "status_changed"
        assert await received(child_channel, 1) == [
            {"kind": "status", "chatId": str(child.id), "status": "waiting"}
        ]
        await update(gql, me, gid(root), archived=False)
        events = await received(owner, 2)
        assert sorted(e["chatId"] for e in events) == sorted([str(root.id), str(child.id)])
        assert {e["kind"] for e in events} == {"unarchived"}
        await nothing_more(owner)
        await nothing_more(child_channel)


async def test_interrupt_announces_the_status(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat = await add_chat(me, "busy", status=ChatStatus.RUNNING, worker=True)
    async with (
        listening(app, f"chat:{chat.id}") as channel,
        listening(app, f"owner:{me.user.id}") as owner,
    ):
        await gql.ok(INTERRUPT, {"id": gid(chat)}, token=me.token)
        assert await received(channel, 1) == [
            {"kind": "status", "chatId": str(chat.id), "status": "interrupting"}
        ]
        assert await received(owner, 1) == [{"kind": "status_changed", "chatId": str(chat.id)}]
        await gql.ok(INTERRUPT, {"id": gid(chat)}, token=me.token)  # already stopping: no-op
        await nothing_more(channel)
        await nothing_more(owner)


async def test_refused_changes_announce_nothing(
    app: Starlette, gql: GraphQLClient, me: Person, other: Person
) -> None:
    chat = await add_chat(me, "quiet", status=ChatStatus.RUNNING)
    async with (
        listening(app, f"chat:{chat.id}") as channel,
        listening(app, f"owner:{me.user.id}") as owner,
    ):
        await update_error(gql, me, gid(chat), title="loud", archived=True, pinOrder=-1)
        await gql.error(INTERRUPT, {"id": gid(chat)}, token=other.token)
        await nothing_more(channel)
        await nothing_more(owner)
