"""Messages: the history connection, sending, editing and the queue.

Every test works with its own freshly created users and chats, so the module's
shared database never couples two tests.
"""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import execute as graphql_execute
from graphql import parse
from starlette.applications import Starlette

from db.keyset import encode_cursor
from db.models import Chat, ChatMessage, ChatQueuedMessage, ModelConfig, User
from db.vocabulary import ChatStatus, MessageRole, TokenKind, Visibility
from resolvers import global_id
from resolvers.accounts import hash_password
from resolvers.context import RequestContext
from resolvers.tokens import authenticate, issue_token
from schema.build import build_schema
from tests.harness import PASSWORD, GraphQLClient, listening, nothing_more, received

PARTS = """
fragment P on MessagePart {
  __typename
  ... on TextPart { text }
  ... on FileReferencePart { fileName startLine endLine content }
}"""
STATE = """
fragment S on Chat { id status updatedAt queuedMessages { id parts { ...P } } }"""
HISTORY = (
    """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  chat(id: $id) {
    messages(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { id role parts { ...P } } }
      nodes { id }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""
    + PARTS
)
CHAT = "query($id: ID!) { chat(id: $id) { ...S } }" + STATE + PARTS
CREATE = """
mutation($input: CreateChatInput!) { createChat(input: $input) { chat { id updatedAt } } }"""
SEND = (
    """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    queued
    message { id role parts { ...P } }
    queuedMessage { id parts { ...P } }
    chat { ...S }
    warnings
  }
}"""
    + STATE
    + PARTS
)
EDIT = (
    """
mutation($input: EditMessageInput!) {
  editMessage(input: $input) { message { id role parts { ...P } } chat { ...S } warnings }
}"""
    + STATE
    + PARTS
)
PROMOTE = (
    """
mutation($id: ID!) {
  promoteQueuedMessage(input: {id: $id}) { message { id parts { ...P } } chat { ...S } warnings }
}"""
    + STATE
    + PARTS
)
DELETE = (
    """
mutation($id: ID!) {
  deleteQueuedMessage(input: {id: $id}) { deletedId chat { ...S } warnings }
}"""
    + STATE
    + PARTS
)
INTERRUPT_CHAT = "mutation($id: ID!) { interruptChat(id: $id) { ...S } }" + STATE + PARTS
NODE = (
    """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Message { role parts { ...P } }
    ... on QueuedMessage { parts { ...P } }
  }
}"""
    + PARTS
)
DAY = timedelta(days=1)


# --- helpers -----------------------------------------------------------------


@dataclass
class Person:
    user: User
    token: str


_password_hash: list[str] = []


async def new_person() -> Person:
    """A fresh member with a session token (argon2 hashed once per module, for speed)."""
    if not _password_hash:
        _password_hash.append(await hash_password(PASSWORD))
    user = await User.create(username=f"u{uuid.uuid4().hex[:12]}", password_hash=_password_hash[0])
    issued = await issue_token(user, TokenKind.SESSION, "session", datetime.now(UTC) + DAY)
    return Person(user, issued.secret)


@pytest.fixture
async def me(gql: GraphQLClient, admin_token: str) -> Person:
    return await new_person()


@pytest.fixture(params=["member", "admin"])
async def stranger(request: pytest.FixtureRequest, gql: GraphQLClient, admin_token: str) -> Person:
    if request.param == "admin":
        return Person(await User.get(username="admin"), admin_token)
    return await new_person()


async def default_model_gid() -> str:
    """A real, enabled model config (sendMessage refuses unknown ones)."""
    row = await ModelConfig.get(is_default=True, deleted=False)
    return global_id.encode("ModelConfig", row.id)


def key(chat_gid: str) -> uuid.UUID:
    decoded = global_id.decode(chat_gid)
    assert decoded is not None
    return uuid.UUID(decoded[1])


def message_gid(message: ChatMessage) -> str:
    return global_id.encode("Message", message.id)


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def body(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": value}]


def texts(nodes: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for node in nodes for part in node["parts"]]


async def create(
    gql: GraphQLClient, person: Person, words: str = "first", status: ChatStatus | None = None
) -> str:
    """A chat made through the API (PENDING), optionally moved to another status."""
    data = await gql.ok(CREATE, {"input": {"content": [text(words)]}}, token=person.token)
    chat_gid: str = data["createChat"]["chat"]["id"]
    if status is not None:
        await Chat.filter(id=key(chat_gid)).update(status=status)
    return chat_gid


async def add_chat(person: Person, status: ChatStatus = ChatStatus.WAITING) -> Chat:
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id,
        owner_id=person.user.id,
        root_id=chat_id,
        title="history",
        status=status,
        updated_at=datetime.now(UTC),
    )


async def add_history(chat_id: uuid.UUID, count: int, start: int = 0) -> list[int]:
    """``count`` messages m<start>…, alternating user and assistant; their ids."""
    await ChatMessage.bulk_create(
        [
            ChatMessage(
                chat_id=chat_id,
                role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                parts=body(f"m{i}"),
            )
            for i in range(start, start + count)
        ]
    )
    rows = await ChatMessage.filter(chat_id=chat_id).order_by("id")
    return [r.id for r in rows][-count:]


def names(start: int, stop: int) -> list[str]:
    return [f"m{i}" for i in range(start, stop)]


async def page(gql: GraphQLClient, person: Person, chat: Chat | str, **args: Any) -> Any:
    chat_gid = chat if isinstance(chat, str) else global_id.encode("Chat", chat.id)
    data = await gql.ok(HISTORY, {"id": chat_gid, **args}, token=person.token)
    connection = data["chat"]["messages"]
    edges = connection["edges"]
    assert [n["id"] for n in connection["nodes"]] == [e["node"]["id"] for e in edges]
    info = connection["pageInfo"]
    if edges:
        assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[-1]["cursor"])
    else:
        assert (info["startCursor"], info["endCursor"]) == (None, None)
    return connection


def page_texts(connection: dict[str, Any]) -> list[str]:
    return texts([e["node"] for e in connection["edges"]])


def flags(connection: dict[str, Any]) -> tuple[bool, bool]:
    return connection["pageInfo"]["hasPreviousPage"], connection["pageInfo"]["hasNextPage"]


async def history(gql: GraphQLClient, person: Person, chat_gid: str) -> list[str]:
    return page_texts(await page(gql, person, chat_gid, first=200))


async def state(gql: GraphQLClient, person: Person, chat_gid: str) -> dict[str, Any]:
    data = await gql.ok(CHAT, {"id": chat_gid}, token=person.token)
    result: dict[str, Any] = data["chat"]
    return result


async def send(
    gql: GraphQLClient, person: Person, chat_gid: str, words: str, **extra: Any
) -> dict[str, Any]:
    data = await gql.ok(
        SEND, {"input": {"chatId": chat_gid, "content": [text(words)], **extra}}, token=person.token
    )
    payload: dict[str, Any] = data["sendMessage"]
    return payload


async def send_error(
    gql: GraphQLClient, person: Person, chat_gid: str, content: Any, **extra: Any
) -> dict[str, Any]:
    variables = {"input": {"chatId": chat_gid, "content": content, **extra}}
    error: dict[str, Any] = await gql.error(SEND, variables, token=person.token)
    return error


async def queue_of(chat_gid: str) -> list[str]:
    rows = await ChatQueuedMessage.filter(chat_id=key(chat_gid)).order_by("id")
    return [part["text"] for row in rows for part in row.parts]


async def snapshot(chat_id: uuid.UUID) -> dict[str, Any]:
    """Everything a message mutation could change about a chat."""
    row = await Chat.get(id=chat_id)
    return {
        "row": (row.status, row.worker_id, row.model_config_id, row.updated_at, row.archived),
        "messages": await ChatMessage.filter(chat_id=chat_id)
        .order_by("id")
        .values_list("id", "deleted", "parts"),
        "queue": await ChatQueuedMessage.filter(chat_id=chat_id)
        .order_by("id")
        .values_list("id", "parts"),
    }


def assert_bad_input(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert error["message"].startswith(f"{field}: "), error


def assert_not_found(error: dict[str, Any], what: str) -> None:
    assert error["extensions"] == {"code": "NOT_FOUND"}, error
    assert error["message"] == f"{what} not found"


def message_key(gid: str) -> int:
    decoded = global_id.decode(gid)
    assert decoded is not None
    assert decoded[0] == "Message"
    return int(decoded[1])


# --- the history connection ---------------------------------------------------------


async def test_default_page_is_the_newest_50_oldest_first(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    ids = await add_history(chat.id, 120)
    newest = await page(gql, me, chat)
    assert page_texts(newest) == names(70, 120)
    assert flags(newest) == (True, False)
    assert [message_key(e["node"]["id"]) for e in newest["edges"]] == ids[70:]
    assert [e["node"]["role"] for e in newest["edges"][:2]] == ["USER", "ASSISTANT"]


async def test_pages_backward_to_the_oldest(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    await add_history(chat.id, 120)
    newest = await page(gql, me, chat, last=50)
    assert (page_texts(newest), flags(newest)) == (names(70, 120), (True, False))
    middle = await page(gql, me, chat, last=50, before=newest["pageInfo"]["startCursor"])
    assert (page_texts(middle), flags(middle)) == (names(20, 70), (True, True))
    oldest = await page(gql, me, chat, last=50, before=middle["pageInfo"]["startCursor"])
    assert (page_texts(oldest), flags(oldest)) == (names(0, 20), (False, True))
    beyond = await page(gql, me, chat, last=50, before=oldest["pageInfo"]["startCursor"])
    assert (page_texts(beyond), flags(beyond)) == ([], (False, True))


async def test_pages_forward_to_the_newest(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    await add_history(chat.id, 120)
    oldest = await page(gql, me, chat, first=50)
    assert (page_texts(oldest), flags(oldest)) == (names(0, 50), (False, True))
    middle = await page(gql, me, chat, first=50, after=oldest["pageInfo"]["endCursor"])
    assert (page_texts(middle), flags(middle)) == (names(50, 100), (True, True))
    newest = await page(gql, me, chat, first=50, after=middle["pageInfo"]["endCursor"])
    assert (page_texts(newest), flags(newest)) == (names(100, 120), (True, False))
    beyond = await page(gql, me, chat, first=50, after=newest["pageInfo"]["endCursor"])
    assert (page_texts(beyond), flags(beyond)) == ([], (True, False))


async def test_cursor_alone_pages_50_in_its_direction(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    await add_history(chat.id, 120)
    cursors = [e["cursor"] for e in (await page(gql, me, chat, first=200))["edges"]]
    assert page_texts(await page(gql, me, chat, after=cursors[9])) == names(10, 60)
    assert page_texts(await page(gql, me, chat, before=cursors[60])) == names(10, 60)
    between = await page(gql, me, chat, after=cursors[9], before=cursors[15])
    assert page_texts(between) == names(10, 15)
    assert page_texts(await page(gql, me, chat, last=3, after=cursors[9])) == names(117, 120)
    assert page_texts(await page(gql, me, chat, first=3, before=cursors[60])) == names(0, 3)


async def test_pages_are_stable_while_messages_arrive(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    await add_history(chat.id, 30)
    newest = await page(gql, me, chat, last=10)
    await add_history(chat.id, 5, start=30)
    older = await page(gql, me, chat, last=10, before=newest["pageInfo"]["startCursor"])
    assert page_texts(older) == names(10, 20)
    caught_up = await page(gql, me, chat, after=newest["pageInfo"]["endCursor"])
    assert (page_texts(caught_up), flags(caught_up)) == (names(30, 35), (True, False))


async def test_deleted_and_model_only_messages_are_hidden(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    ids = await add_history(chat.id, 10)
    await ChatMessage.filter(id__in=[ids[3], ids[4]]).update(deleted=True)
    await ChatMessage.filter(id=ids[6]).update(visibility=Visibility.MODEL)
    await ChatMessage.create(
        chat_id=chat.id, role=MessageRole.SYSTEM, parts=body("secret"), visibility=Visibility.MODEL
    )
    visible = ["m0", "m1", "m2", "m5", "m7", "m8", "m9"]
    assert page_texts(await page(gql, me, chat)) == visible
    first = await page(gql, me, chat, first=4)
    assert (page_texts(first), flags(first)) == (visible[:4], (False, True))
    rest = await page(gql, me, chat, first=4, after=first["pageInfo"]["endCursor"])
    assert (page_texts(rest), flags(rest)) == (visible[4:], (True, False))
    last = await page(gql, me, chat, last=3)
    assert page_texts(last) == visible[-3:]
    for hidden in (ids[3], ids[6]):
        data = await gql.ok(NODE, {"id": global_id.encode("Message", hidden)}, token=me.token)
        assert data["node"] is None


async def test_page_size_is_clamped_to_200(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    await add_history(chat.id, 250)
    forward = await page(gql, me, chat, first=1000)
    assert (page_texts(forward), flags(forward)) == (names(0, 200), (False, True))
    backward = await page(gql, me, chat, last=201)
    assert (page_texts(backward), flags(backward)) == (names(50, 250), (True, False))
    assert len((await page(gql, me, chat))["edges"]) == 50


async def test_empty_history_and_zero_sized_pages(gql: GraphQLClient, me: Person) -> None:
    chat = await add_chat(me)
    empty = await page(gql, me, chat)
    assert (empty["edges"], flags(empty)) == ([], (False, False))
    await add_history(chat.id, 3)
    assert (await page(gql, me, chat, first=0))["edges"] == []
    assert (await page(gql, me, chat, last=0))["edges"] == []


async def test_a_zero_sized_page_says_whether_messages_lie_beyond(
    gql: GraphQLClient, me: Person
) -> None:
    """``first: 0`` / ``last: 0`` return no edges but still the truth about the rest."""
    chat = await add_chat(me)
    assert flags(await page(gql, me, chat, first=0)) == (False, False)
    assert flags(await page(gql, me, chat, last=0)) == (False, False)
    await add_history(chat.id, 260)
    cursors = [e["cursor"] for e in (await page(gql, me, chat, first=200))["edges"]]
    cursors += [e["cursor"] for e in (await page(gql, me, chat, last=60))["edges"]]
    cases: list[tuple[dict[str, Any], tuple[bool, bool]]] = [
        ({"first": 0}, (False, True)),
        ({"last": 0}, (True, False)),
        ({"first": 0, "after": cursors[9]}, (True, True)),
        ({"last": 0, "before": cursors[9]}, (True, True)),
        ({"first": 0, "after": cursors[-1]}, (True, False)),
        ({"last": 0, "before": cursors[0]}, (False, True)),
        ({"first": 0, "after": cursors[9], "before": cursors[10]}, (True, False)),
        ({"last": 0, "after": cursors[9], "before": cursors[11]}, (True, True)),
    ]
    for args, expected in cases:
        zero = await page(gql, me, chat, **args)
        assert (zero["edges"], flags(zero)) == ([], expected), args
        assert await through_graphql_core(me, chat, args) == zero, args


async def through_graphql_core(person: Person, chat: Chat, args: dict[str, Any]) -> Any:
    """The history page as graphql-core's own executor answers it (the HTTP path
    runs a compiled plan)."""
    schema = build_schema()
    viewer, token = await authenticate(person.token)
    context = RequestContext(request_id="core", viewer=viewer, token=token)
    variables = {"id": global_id.encode("Chat", chat.id), **args}
    outcome = graphql_execute(
        schema._schema, parse(HISTORY), context_value=context, variable_values=variables
    )
    result = await outcome if inspect.isawaitable(outcome) else outcome
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data["chat"]["messages"]


CHAT_CURSOR = encode_cursor([1, "2025-01-01T00:00:00+00:00", str(uuid.UUID(int=1))])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"first": -1}, "first"),
        ({"last": -5}, "last"),
        ({"first": 1, "last": 1}, "last"),
        ({"after": "garbage!"}, "after"),
        ({"before": "garbage!"}, "before"),
        ({"after": CHAT_CURSOR}, "after"),
        ({"before": encode_cursor(["seven"])}, "before"),
        ({"after": encode_cursor([None])}, "after"),
        ({"after": "W10"}, "after"),  # []
        pytest.param({"after": encode_cursor([2**63])}, "after", id="id-beyond-bigint"),
    ],
)
async def test_bad_page_arguments_name_the_field(
    gql: GraphQLClient, me: Person, args: dict[str, Any], field: str
) -> None:
    chat = await add_chat(me)
    await add_history(chat.id, 3)
    error = await gql.error(
        HISTORY, {"id": global_id.encode("Chat", chat.id), **args}, token=me.token
    )
    assert_bad_input(error, field)


# --- sendMessage ------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [ChatStatus.WAITING, ChatStatus.ERROR, ChatStatus.REQUIRES_ACTION]
)
async def test_idle_chat_appends_and_starts_a_turn(
    gql: GraphQLClient, me: Person, status: ChatStatus
) -> None:
    chat_gid = await create(gql, me, "first", status)
    before = await state(gql, me, chat_gid)
    payload = await send(gql, me, chat_gid, "second")
    assert payload["queued"] is False
    assert payload["queuedMessage"] is None
    assert payload["warnings"] == []
    assert payload["message"]["role"] == "USER"
    assert texts([payload["message"]]) == ["second"]
    assert payload["chat"]["status"] == "PENDING"
    assert payload["chat"]["queuedMessages"] == []
    assert payload["chat"]["updatedAt"] > before["updatedAt"]
    assert payload["chat"] == await state(gql, me, chat_gid)
    assert await history(gql, me, chat_gid) == ["first", "second"]
    row = await ChatMessage.get(id=message_key(payload["message"]["id"]))
    assert row.created_by_id == me.user.id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "status", [ChatStatus.PENDING, ChatStatus.RUNNING, ChatStatus.INTERRUPTING]
)
async def test_busy_chat_queues(gql: GraphQLClient, me: Person, status: ChatStatus) -> None:
    chat_gid = await create(gql, me, "first", status)
    payload = await send(gql, me, chat_gid, "later")
    assert (payload["queued"], payload["message"]) == (True, None)
    assert texts([payload["queuedMessage"]]) == ["later"]
    assert payload["chat"]["status"] == status.name
    assert payload["chat"]["queuedMessages"] == [payload["queuedMessage"]]
    assert await history(gql, me, chat_gid) == ["first"]
    await send(gql, me, chat_gid, "even later")
    assert texts((await state(gql, me, chat_gid))["queuedMessages"]) == ["later", "even later"]


async def test_an_idle_chat_with_a_queue_still_queues(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first")
    await send(gql, me, chat_gid, "queued while busy")
    await Chat.filter(id=key(chat_gid)).update(status=ChatStatus.WAITING)
    payload = await send(gql, me, chat_gid, "behind it")
    assert (payload["queued"], payload["message"]) == (True, None)
    assert payload["chat"]["status"] == "WAITING"
    assert await queue_of(chat_gid) == ["queued while busy", "behind it"]
    assert await history(gql, me, chat_gid) == ["first"]


async def test_the_21st_queued_message_is_refused(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first")
    for i in range(20):
        assert (await send(gql, me, chat_gid, f"q{i}"))["queued"] is True
    before = await snapshot(key(chat_gid))
    error = await send_error(
        gql,
        me,
        chat_gid,
        [text("one too many")],
        modelConfigId=await default_model_gid(),
    )
    assert error["message"] == "Maximum 20 messages can be queued."
    assert error["extensions"] == {"code": "QUEUE_FULL", "maximum": 20}
    assert await snapshot(key(chat_gid)) == before
    error = await send_error(gql, me, chat_gid, [text("still")], busyBehavior="INTERRUPT")
    assert error["extensions"]["code"] == "QUEUE_FULL"
    assert await snapshot(key(chat_gid)) == before


async def test_interrupt_unclaimed_turn_runs_the_queue_head(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first")  # PENDING, never claimed
    await send(gql, me, chat_gid, "waiting in line")
    payload = await send(gql, me, chat_gid, "urgent", busyBehavior="INTERRUPT")
    assert texts([payload["message"]]) == ["waiting in line"]
    assert payload["chat"]["status"] == "PENDING"
    assert texts(payload["chat"]["queuedMessages"]) == ["urgent"]
    assert await history(gql, me, chat_gid) == ["first", "waiting in line"]
    assert await queue_of(chat_gid) == ["urgent"]


async def test_interrupt_unclaimed_turn_with_no_queue_runs_the_new_message(
    gql: GraphQLClient, me: Person
) -> None:
    chat_gid = await create(gql, me, "first")
    payload = await send(gql, me, chat_gid, "instead", busyBehavior="INTERRUPT")
    assert texts([payload["message"]]) == ["instead"]
    assert payload["message"]["role"] == "USER"
    assert payload["chat"]["status"] == "PENDING"
    assert payload["chat"]["queuedMessages"] == []
    assert await history(gql, me, chat_gid) == ["first", "instead"]
    assert await queue_of(chat_gid) == []


@pytest.mark.parametrize("status", [ChatStatus.RUNNING, ChatStatus.PENDING])
async def test_interrupt_claimed_turn_stops_it_and_queues(
    gql: GraphQLClient, me: Person, status: ChatStatus
) -> None:
    chat_gid = await create(gql, me, "first")
    worker = uuid.uuid4()
    await Chat.filter(id=key(chat_gid)).update(status=status, worker_id=worker)
    payload = await send(gql, me, chat_gid, "stop", busyBehavior="INTERRUPT")
    assert (payload["queued"], payload["message"]) == (True, None)
    assert texts([payload["queuedMessage"]]) == ["stop"]
    row = await Chat.get(id=key(chat_gid))
    if status is ChatStatus.RUNNING:  # WAITING once its worker has stopped the run
        assert payload["chat"]["status"] == "INTERRUPTING"
        assert (row.status, row.worker_id) == (ChatStatus.INTERRUPTING, worker)
    else:
        assert payload["chat"]["status"] == "WAITING"
        assert (row.status, row.worker_id) == (ChatStatus.WAITING, None)
    assert await history(gql, me, chat_gid) == ["first"]
    assert await queue_of(chat_gid) == ["stop"]


async def test_interrupt_on_an_idle_chat_just_appends(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    payload = await send(gql, me, chat_gid, "hello", busyBehavior="INTERRUPT")
    assert (payload["queued"], texts([payload["message"]])) == (False, ["hello"])
    assert payload["chat"]["status"] == "PENDING"


async def test_archived_chat_refuses_messages(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    await Chat.filter(id=key(chat_gid)).update(archived=True)
    before = await snapshot(key(chat_gid))
    error = await send_error(gql, me, chat_gid, [text("hello?")])
    assert_bad_input(error, "chatId")
    assert await snapshot(key(chat_gid)) == before


@pytest.mark.parametrize(
    ("content", "extra", "field"),
    [
        ([], {}, "content"),
        ([{}], {}, "content[0]"),
        (
            [{"text": "a", "fileId": global_id.encode("ChatFile", uuid.UUID(int=7))}],
            {},
            "content[0]",
        ),
        ([text(" \n ")], {}, "content[0].text"),
        (
            [text("ok"), {"fileReference": {"fileName": ""}}],
            {},
            "content[1].fileReference.fileName",
        ),
        ([text("ok")], {"modelConfigId": "garbage"}, "modelConfigId"),
        ([text("ok")], {"chatId": "garbage"}, "chatId"),
        ([text("ok")], {"chatId": global_id.encode("Message", 1)}, "chatId"),
    ],
)
async def test_bad_send_input_names_the_field_and_writes_nothing(
    gql: GraphQLClient, me: Person, content: list[Any], extra: dict[str, Any], field: str
) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    before = await snapshot(key(chat_gid))
    assert_bad_input(await send_error(gql, me, chat_gid, content, **extra), field)
    assert await snapshot(key(chat_gid)) == before


async def test_send_to_a_missing_chat(gql: GraphQLClient, me: Person) -> None:
    missing = global_id.encode("Chat", uuid.uuid4())
    assert_not_found(await send_error(gql, me, missing, [text("hi")]), "chat")


async def test_send_needs_a_signed_in_user(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    variables = {"input": {"chatId": chat_gid, "content": [text("hi")]}}
    error = await gql.error(SEND, variables)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert await history(gql, me, chat_gid) == ["first"]


# --- message parts ------------------------------------------------------------------


REFERENCE = {"fileName": "src/app.py", "startLine": 3, "endLine": 9, "content": "def f():\n"}
CONTENT = [text("look at this"), {"fileReference": REFERENCE}, {"fileReference": {"fileName": "x"}}]
EXPECTED_PARTS = [
    {"__typename": "TextPart", "text": "look at this"},
    {"__typename": "FileReferencePart", **REFERENCE},
    {
        "__typename": "FileReferencePart",
        "fileName": "x",
        "startLine": None,
        "endLine": None,
        "content": None,
    },
]


async def test_parts_round_trip_through_the_history(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    variables = {"input": {"chatId": chat_gid, "content": CONTENT}}
    payload = (await gql.ok(SEND, variables, token=me.token))["sendMessage"]
    assert payload["message"]["parts"] == EXPECTED_PARTS
    listed = (await page(gql, me, chat_gid))["edges"][-1]["node"]
    assert listed["parts"] == EXPECTED_PARTS
    node = await gql.ok(NODE, {"id": listed["id"]}, token=me.token)
    assert node["node"] == {
        "__typename": "Message",
        "id": listed["id"],
        "role": "USER",
        "parts": EXPECTED_PARTS,
    }


async def test_parts_round_trip_through_the_queue(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first")
    variables = {"input": {"chatId": chat_gid, "content": CONTENT}}
    payload = (await gql.ok(SEND, variables, token=me.token))["sendMessage"]
    queued = payload["queuedMessage"]
    assert queued["parts"] == EXPECTED_PARTS
    node = await gql.ok(NODE, {"id": queued["id"]}, token=me.token)
    assert node["node"] == {
        "__typename": "QueuedMessage",
        "id": queued["id"],
        "parts": EXPECTED_PARTS,
    }
    promoted = await gql.ok(PROMOTE, {"id": queued["id"]}, token=me.token)
    assert promoted["promoteQueuedMessage"]["message"]["parts"] == EXPECTED_PARTS


# --- editMessage ------------------------------------------------------------------


async def conversation(gql: GraphQLClient, me: Person) -> tuple[str, list[ChatMessage]]:
    """u1 a1 u2 a2 in the history and one queued message; the chat is RUNNING."""
    chat_gid = await create(gql, me, "u1")
    chat_id = key(chat_gid)
    [u1] = await ChatMessage.filter(chat_id=chat_id)
    rows = [u1]
    for role, words in (("assistant", "a1"), ("user", "u2"), ("assistant", "a2")):
        rows.append(
            await ChatMessage.create(chat_id=chat_id, role=MessageRole(role), parts=body(words))
        )
    await send(gql, me, chat_gid, "queued")
    await Chat.filter(id=chat_id).update(status=ChatStatus.RUNNING, worker_id=uuid.uuid4())
    return chat_gid, rows


async def edit(gql: GraphQLClient, me: Person, message: str, words: str) -> dict[str, Any]:
    variables = {"input": {"messageId": message, "content": [text(words)]}}
    payload: dict[str, Any] = (await gql.ok(EDIT, variables, token=me.token))["editMessage"]
    return payload


async def edit_error(gql: GraphQLClient, person: Person, message: str, content: Any) -> Any:
    variables = {"input": {"messageId": message, "content": content}}
    return await gql.error(EDIT, variables, token=person.token)


async def test_edit_drops_later_history_and_the_queue(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (_, _, u2, a2) = await conversation(gql, me)
    payload = await edit(gql, me, message_gid(u2), "u2, better")
    assert texts([payload["message"]]) == ["u2, better"]
    assert payload["message"]["role"] == "USER"
    assert payload["warnings"] == []
    assert payload["chat"]["status"] == "PENDING"
    assert payload["chat"]["queuedMessages"] == []
    assert await history(gql, me, chat_gid) == ["u1", "a1", "u2, better"]
    deleted = await ChatMessage.filter(chat_id=key(chat_gid), deleted=True).order_by("id")
    assert [m.id for m in deleted] == [u2.id, a2.id]
    row = await Chat.get(id=key(chat_gid))
    assert (row.status, row.worker_id) == (ChatStatus.PENDING, None)
    assert await queue_of(chat_gid) == []
    data = await gql.ok(NODE, {"id": message_gid(u2)}, token=me.token)
    assert data["node"] is None


async def test_edit_the_first_message(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (u1, *_) = await conversation(gql, me)
    await edit(gql, me, message_gid(u1), "start over")
    assert await history(gql, me, chat_gid) == ["start over"]


@pytest.mark.parametrize("which", [1, 3])
async def test_only_user_messages_can_be_edited(gql: GraphQLClient, me: Person, which: int) -> None:
    chat_gid, rows = await conversation(gql, me)
    before = await snapshot(key(chat_gid))
    error = await edit_error(gql, me, message_gid(rows[which]), [text("no")])
    assert_bad_input(error, "messageId")
    assert error["message"] == "messageId: only user messages can be edited"
    assert await snapshot(key(chat_gid)) == before


async def test_model_only_messages_cannot_be_edited(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first")
    system = await ChatMessage.create(
        chat_id=key(chat_gid),
        role=MessageRole.SYSTEM,
        parts=body("be terse"),
        visibility=Visibility.MODEL,
    )
    before = await snapshot(key(chat_gid))
    error = await edit_error(gql, me, message_gid(system), [text("be verbose")])
    # not a user message (BAD_USER_INPUT) or, being hidden, not there at all (NOT_FOUND)
    assert error["extensions"]["code"] in {"BAD_USER_INPUT", "NOT_FOUND"}
    assert await snapshot(key(chat_gid)) == before


async def test_a_dropped_message_cannot_be_edited(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (_, _, u2, _) = await conversation(gql, me)
    await edit(gql, me, message_gid(u2), "replacement")
    before = await snapshot(key(chat_gid))
    assert_not_found(await edit_error(gql, me, message_gid(u2), [text("again")]), "message")
    assert await snapshot(key(chat_gid)) == before


@pytest.mark.parametrize(
    ("message", "content", "field"),
    [
        pytest.param("garbage!", [text("x")], "messageId", id="not-base64"),
        pytest.param(
            global_id.encode("Chat", uuid.UUID(int=7)), [text("x")], "messageId", id="a-chat-id"
        ),
        pytest.param(global_id.encode("Message", "abc"), [text("x")], "messageId", id="letters"),
        pytest.param(global_id.encode("Message", "-1"), [text("x")], "messageId", id="negative"),
        pytest.param(
            global_id.encode("Message", "²"), [text("x")], "messageId", id="unicode-digit"
        ),
        pytest.param(
            global_id.encode("Message", 2**64), [text("x")], "messageId", id="beyond-bigint"
        ),
        pytest.param(None, [], "content", id="no-parts"),
        pytest.param(None, [text("ok"), {}], "content[1]", id="second-part-empty"),
    ],
)
async def test_bad_edit_input_names_the_field(
    gql: GraphQLClient, me: Person, message: str | None, content: list[Any], field: str
) -> None:
    chat_gid, (u1, *_) = await conversation(gql, me)
    before = await snapshot(key(chat_gid))
    error = await edit_error(gql, me, message or message_gid(u1), content)
    assert_bad_input(error, field)
    assert await snapshot(key(chat_gid)) == before


# --- the queue: promote and delete --------------------------------------------------


async def queued_chat(gql: GraphQLClient, me: Person, *words: str) -> tuple[str, list[str]]:
    """A PENDING chat with ``words`` queued; the queued messages' ids."""
    chat_gid = await create(gql, me, "first")
    ids = [(await send(gql, me, chat_gid, w))["queuedMessage"]["id"] for w in words]
    return chat_gid, ids


async def test_queue_is_listed_oldest_first(gql: GraphQLClient, me: Person) -> None:
    chat_gid, ids = await queued_chat(gql, me, "q1", "q2", "q3")
    listed = (await state(gql, me, chat_gid))["queuedMessages"]
    assert [q["id"] for q in listed] == ids
    assert texts(listed) == ["q1", "q2", "q3"]


async def test_promote_moves_one_message_into_the_history(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (q1, q2, q3) = await queued_chat(gql, me, "q1", "q2", "q3")
    data = await gql.ok(PROMOTE, {"id": q2}, token=me.token)
    payload = data["promoteQueuedMessage"]
    assert texts([payload["message"]]) == ["q2"]
    assert payload["chat"]["status"] == "PENDING"
    assert [q["id"] for q in payload["chat"]["queuedMessages"]] == [q1, q3]
    assert await history(gql, me, chat_gid) == ["first", "q2"]
    row = await ChatMessage.get(id=message_key(payload["message"]["id"]))
    assert (row.role, row.created_by_id) == (MessageRole.USER, me.user.id)  # type: ignore[attr-defined]
    assert_not_found(await gql.error(PROMOTE, {"id": q2}, token=me.token), "queued message")


@pytest.mark.parametrize(
    ("status", "after"),
    [
        (ChatStatus.WAITING, "PENDING"),
        (ChatStatus.ERROR, "PENDING"),
        (ChatStatus.RUNNING, "RUNNING"),
    ],
)
async def test_promote_starts_an_idle_chat(
    gql: GraphQLClient, me: Person, status: ChatStatus, after: str
) -> None:
    chat_gid, (q1,) = await queued_chat(gql, me, "q1")
    await Chat.filter(id=key(chat_gid)).update(status=status)
    payload = (await gql.ok(PROMOTE, {"id": q1}, token=me.token))["promoteQueuedMessage"]
    assert payload["chat"]["status"] == after
    assert (await Chat.get(id=key(chat_gid))).status.name == after


async def test_delete_drops_one_queued_message(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (q1, q2, q3) = await queued_chat(gql, me, "q1", "q2", "q3")
    payload = (await gql.ok(DELETE, {"id": q1}, token=me.token))["deleteQueuedMessage"]
    assert payload["deletedId"] == q1
    assert payload["warnings"] == []
    assert [q["id"] for q in payload["chat"]["queuedMessages"]] == [q2, q3]
    assert payload["chat"]["status"] == "PENDING"
    assert await history(gql, me, chat_gid) == ["first"]
    assert_not_found(await gql.error(DELETE, {"id": q1}, token=me.token), "queued message")
    data = await gql.ok(NODE, {"id": q1}, token=me.token)
    assert data["node"] is None


@pytest.mark.parametrize("document", [PROMOTE, DELETE], ids=["promote", "delete"])
@pytest.mark.parametrize(
    "bad_id",
    ["garbage!", global_id.encode("Message", 1), global_id.encode("QueuedMessage", "x")],
)
async def test_malformed_queued_ids_name_the_field(
    gql: GraphQLClient, me: Person, document: str, bad_id: str
) -> None:
    assert_bad_input(await gql.error(document, {"id": bad_id}, token=me.token), "id")


# --- another user's messages --------------------------------------------------------


async def test_another_users_messages_cannot_be_touched(
    gql: GraphQLClient, me: Person, stranger: Person
) -> None:
    chat_gid, (u1, *_) = await conversation(gql, me)
    [queued] = (await state(gql, me, chat_gid))["queuedMessages"]
    before = await snapshot(key(chat_gid))

    assert_not_found(await send_error(gql, stranger, chat_gid, [text("hi")]), "chat")
    error = await send_error(gql, stranger, chat_gid, [text("hi")], busyBehavior="INTERRUPT")
    assert_not_found(error, "chat")
    assert_not_found(await edit_error(gql, stranger, message_gid(u1), [text("x")]), "message")
    for document in (PROMOTE, DELETE):
        error = await gql.error(document, {"id": queued["id"]}, token=stranger.token)
        assert_not_found(error, "queued message")
    for node_id in (message_gid(u1), queued["id"]):
        assert await gql.ok(NODE, {"id": node_id}, token=stranger.token) == {"node": None}
    data = await gql.ok(HISTORY, {"id": chat_gid}, token=stranger.token)
    assert data == {"chat": None}

    assert await snapshot(key(chat_gid)) == before


# --- events ---------------------------------------------------------------------------


async def test_append_publishes_message_then_status(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    chat_id = str(key(chat_gid))
    async with (
        listening(app, f"chat:{chat_id}") as channel,
        listening(app, f"owner:{me.user.id}") as owner,
    ):
        payload = await send(gql, me, chat_gid, "second")
        assert await received(channel, 2) == [
            {
                "kind": "message",
                "chatId": chat_id,
                "messageId": message_key(payload["message"]["id"]),
            },
            {"kind": "status", "chatId": chat_id, "status": "pending"},
        ]
        assert await received(owner, 1) == [{"kind": "status_changed", "chatId": chat_id}]
        await nothing_more(channel)
        await nothing_more(owner)


async def test_queueing_publishes_the_queue_only(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat_gid = await create(gql, me, "first")
    chat_id = str(key(chat_gid))
    async with (
        listening(app, f"chat:{chat_id}") as channel,
        listening(app, f"owner:{me.user.id}") as owner,
    ):
        await send(gql, me, chat_gid, "later")
        assert await received(channel, 1) == [{"kind": "queue", "chatId": chat_id}]
        await nothing_more(channel)
        await nothing_more(owner)


async def test_interrupting_send_publishes_the_whole_hand_over(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat_gid = await create(gql, me, "first")
    chat_id = str(key(chat_gid))
    async with listening(app, f"chat:{chat_id}") as channel:
        payload = await send(gql, me, chat_gid, "now", busyBehavior="INTERRUPT")
        assert await received(channel, 4) == [
            {"kind": "queue", "chatId": chat_id},
            {"kind": "status", "chatId": chat_id, "status": "waiting"},
            {
                "kind": "message",
                "chatId": chat_id,
                "messageId": message_key(payload["message"]["id"]),
            },
            {"kind": "status", "chatId": chat_id, "status": "pending"},
        ]
        await nothing_more(channel)


async def test_edit_publishes_a_history_reset(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat_gid, (_, _, u2, _) = await conversation(gql, me)
    chat_id = str(key(chat_gid))
    async with (
        listening(app, f"chat:{chat_id}") as channel,
        listening(app, f"owner:{me.user.id}") as owner,
    ):
        await edit(gql, me, message_gid(u2), "again")
        assert await received(channel, 3) == [
            {"kind": "history_reset", "chatId": chat_id},
            {"kind": "queue", "chatId": chat_id},
            {"kind": "status", "chatId": chat_id, "status": "pending"},
        ]
        assert await received(owner, 1) == [{"kind": "status_changed", "chatId": chat_id}]
        await nothing_more(channel)


async def test_promote_and_delete_publish_the_queue(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat_gid, (q1, q2) = await queued_chat(gql, me, "q1", "q2")
    await Chat.filter(id=key(chat_gid)).update(status=ChatStatus.WAITING)
    chat_id = str(key(chat_gid))
    async with listening(app, f"chat:{chat_id}") as channel:
        payload = (await gql.ok(PROMOTE, {"id": q1}, token=me.token))["promoteQueuedMessage"]
        assert await received(channel, 3) == [
            {"kind": "queue", "chatId": chat_id},
            {
                "kind": "message",
                "chatId": chat_id,
                "messageId": message_key(payload["message"]["id"]),
            },
            {"kind": "status", "chatId": chat_id, "status": "pending"},
        ]
        await gql.ok(DELETE, {"id": q2}, token=me.token)
        assert await received(channel, 1) == [{"kind": "queue", "chatId": chat_id}]
        await nothing_more(channel)


async def test_refused_sends_publish_nothing(
    app: Starlette, gql: GraphQLClient, me: Person
) -> None:
    chat_gid, _ = await queued_chat(gql, me, *[f"q{i}" for i in range(20)])
    async with listening(app, f"chat:{key(chat_gid)}") as channel:
        await send_error(gql, me, chat_gid, [text("full")])
        await send_error(gql, me, chat_gid, [])
        await nothing_more(channel)


# --- all or nothing -----------------------------------------------------------------


@pytest.fixture
def broken_inserts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ChatMessage insert fails, after whatever the mutation wrote before it."""

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ChatMessage, "create", broken)


def assert_internal(result: dict[str, Any]) -> None:
    [error] = result["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


async def test_failed_interrupting_send_leaves_nothing(
    gql: GraphQLClient, me: Person, request: pytest.FixtureRequest
) -> None:
    chat_gid, _ = await queued_chat(gql, me, "q1")
    before = await snapshot(key(chat_gid))
    request.getfixturevalue("broken_inserts")
    variables = {
        "input": {
            "chatId": chat_gid,
            "content": [text("now")],
            "busyBehavior": "INTERRUPT",
            "modelConfigId": await default_model_gid(),
        }
    }
    assert_internal(await gql(SEND, variables, token=me.token))
    assert await snapshot(key(chat_gid)) == before


async def test_failed_append_leaves_nothing(
    gql: GraphQLClient, me: Person, request: pytest.FixtureRequest
) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    before = await snapshot(key(chat_gid))
    request.getfixturevalue("broken_inserts")
    variables = {
        "input": {
            "chatId": chat_gid,
            "content": [text("second")],
            "modelConfigId": await default_model_gid(),
        }
    }
    assert_internal(await gql(SEND, variables, token=me.token))
    assert await snapshot(key(chat_gid)) == before


async def test_failed_edit_leaves_nothing(
    gql: GraphQLClient, me: Person, request: pytest.FixtureRequest
) -> None:
    chat_gid, (_, _, u2, _) = await conversation(gql, me)
    before = await snapshot(key(chat_gid))
    request.getfixturevalue("broken_inserts")
    variables = {"input": {"messageId": message_gid(u2), "content": [text("x")]}}
    assert_internal(await gql(EDIT, variables, token=me.token))
    assert await snapshot(key(chat_gid)) == before


async def test_failed_promote_leaves_nothing(
    gql: GraphQLClient, me: Person, request: pytest.FixtureRequest
) -> None:
    chat_gid, (q1,) = await queued_chat(gql, me, "q1")
    await Chat.filter(id=key(chat_gid)).update(status=ChatStatus.WAITING)
    before = await snapshot(key(chat_gid))
    request.getfixturevalue("broken_inserts")
    assert_internal(await gql(PROMOTE, {"id": q1}, token=me.token))
    assert await snapshot(key(chat_gid)) == before


# --- payloads show the chat as stored -----------------------------------------------


async def test_send_payload_matches_the_stored_chat(gql: GraphQLClient, me: Person) -> None:
    chat_gid = await create(gql, me, "first", ChatStatus.WAITING)
    payload = await send(gql, me, chat_gid, "second")
    assert payload["chat"] == await state(gql, me, chat_gid)


async def test_edit_payload_matches_the_stored_chat(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (u1, *_) = await conversation(gql, me)
    payload = await edit(gql, me, message_gid(u1), "again")
    assert payload["chat"] == await state(gql, me, chat_gid)


async def test_promote_payload_matches_the_stored_chat(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (q1,) = await queued_chat(gql, me, "q1")
    payload = (await gql.ok(PROMOTE, {"id": q1}, token=me.token))["promoteQueuedMessage"]
    assert payload["chat"] == await state(gql, me, chat_gid)


async def test_interrupting_an_unclaimed_chat_runs_its_queue_head(
    gql: GraphQLClient, me: Person
) -> None:
    chat_gid, (_, q2) = await queued_chat(gql, me, "q1", "q2")  # PENDING, never claimed
    data = await gql.ok(INTERRUPT_CHAT, {"id": chat_gid}, token=me.token)
    chat = data["interruptChat"]
    assert chat["status"] == "PENDING"
    assert [q["id"] for q in chat["queuedMessages"]] == [q2]
    assert await history(gql, me, chat_gid) == ["first", "q1"]


async def test_interrupt_payload_matches_the_stored_chat(gql: GraphQLClient, me: Person) -> None:
    chat_gid, _ = await queued_chat(gql, me, "q1")
    chat = (await gql.ok(INTERRUPT_CHAT, {"id": chat_gid}, token=me.token))["interruptChat"]
    assert chat == await state(gql, me, chat_gid)


async def test_interrupting_a_claimed_chat_leaves_the_queue(gql: GraphQLClient, me: Person) -> None:
    chat_gid, (q1,) = await queued_chat(gql, me, "q1")
    await Chat.filter(id=key(chat_gid)).update(status=ChatStatus.RUNNING, worker_id=uuid.uuid4())
    chat = (await gql.ok(INTERRUPT_CHAT, {"id": chat_gid}, token=me.token))["interruptChat"]
    assert chat["status"] == "INTERRUPTING"  # WAITING once its worker has stopped the run
    assert [q["id"] for q in chat["queuedMessages"]] == [q1]
    assert await history(gql, me, chat_gid) == ["first"]
