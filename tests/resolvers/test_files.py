"""Files through GraphQL: uploading (multipart), linking to chats, reading them back.

Every refused upload must leave ``chat_files`` as it was and say why; every
refused message must leave chats, messages, the queue and links as they were.
Each test works with its own fresh users.
"""

from __future__ import annotations

import urllib.parse
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from db.chat_files import FileMeta, store_file
from db.models import Chat, ChatFile, ChatFileLink, ChatMessage, ChatQueuedMessage
from db.vocabulary import CHAT_FILE_MAX_BYTES, ChatStatus
from resolvers import global_id
from tests.harness import GraphQLClient, Person, new_person
from tests.uploads import (
    SVG,
    ZIP_TAIL,
    gif,
    jpeg,
    png,
    png_of_size,
    stored_files,
    upload,
    upload_error,
    upload_response,
    webp,
)

FILE = "fragment F on ChatFile { id name mimeType sizeBytes url }"
PARTS = """
fragment P on MessagePart {
  __typename
  ... on TextPart { text }
  ... on FilePart { file { ...F } }
}"""
CHAT_STATE = "fragment C on Chat { id files { ...F } queuedMessages { id parts { ...P } } }"
CREATE = (
    """
mutation($input: CreateChatInput!) {
  createChat(input: $input) {
    chat { ...C messages { nodes { id parts { ...P } } } }
    warnings
  }
}"""
    + CHAT_STATE
    + PARTS
    + FILE
)
SEND = (
    """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    queued message { id parts { ...P } } queuedMessage { id parts { ...P } } chat { ...C } warnings
  }
}"""
    + CHAT_STATE
    + PARTS
    + FILE
)
PROMOTE = (
    """
mutation($id: ID!) {
  promoteQueuedMessage(input: {id: $id}) { message { id parts { ...P } } chat { ...C } warnings }
}"""
    + CHAT_STATE
    + PARTS
    + FILE
)
EDIT = (
    """
mutation($input: EditMessageInput!) {
  editMessage(input: $input) { message { id parts { ...P } } chat { ...C } warnings }
}"""
    + CHAT_STATE
    + PARTS
    + FILE
)
CHAT = "query($id: ID!) { chat(id: $id) { ...C } }" + CHAT_STATE + PARTS + FILE
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on ChatFile { name mimeType } } }"
DAY = timedelta(days=1)
CAP_WARNING = "file linking skipped: batch of {} file(s) would exceed limit of 50"


# --- helpers -----------------------------------------------------------------


@pytest.fixture
async def me(admin_token: str) -> Person:
    return await new_person("f")


@pytest.fixture
async def other(admin_token: str) -> Person:
    return await new_person("f")


def file_uuid(gid: str) -> uuid.UUID:
    return global_id.decode_uuid(gid, "ChatFile")


def chat_uuid(gid: str) -> uuid.UUID:
    return global_id.decode_uuid(gid, "Chat")


def file_gid(meta: FileMeta) -> str:
    return global_id.encode("ChatFile", meta.id)


def file_input(gid: str) -> dict[str, str]:
    return {"fileId": gid}


def text(value: str) -> dict[str, str]:
    return {"text": value}


async def stored(person: Person, seed: int) -> FileMeta:
    """A file of ``person`` put straight into storage (for tests about linking)."""
    meta, _ = await store_file(person.user.id, f"s{seed}.png", "image/png", png(seed))
    return meta


async def linked_names(chat_id: uuid.UUID) -> list[str]:
    links = await ChatFileLink.filter(chat_id=chat_id).order_by("id").prefetch_related("file")
    return [link.file.name for link in links]


async def rows_of(person: Person) -> tuple[int, int, int, int]:
    """Chats, messages, queued messages and file links the person has."""
    owner = person.user.id
    return (
        await Chat.filter(owner_id=owner).count(),
        await ChatMessage.filter(chat__owner_id=owner).count(),
        await ChatQueuedMessage.filter(chat__owner_id=owner).count(),
        await ChatFileLink.filter(chat__owner_id=owner).count(),
    )


async def create_chat(gql: GraphQLClient, person: Person, *parts: dict[str, Any]) -> Any:
    return (await gql.ok(CREATE, {"input": {"content": list(parts)}}, token=person.token))[
        "createChat"
    ]


async def send(gql: GraphQLClient, person: Person, input: dict[str, Any]) -> Any:
    return (await gql.ok(SEND, {"input": input}, token=person.token))["sendMessage"]


def part_files(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p["file"] for p in parts if p["__typename"] == "FilePart"]


# --- uploading -----------------------------------------------------------------


async def test_an_upload_answers_the_file_and_node_finds_it_for_its_owner_only(
    http: httpx.AsyncClient, gql: GraphQLClient, me: Person, other: Person
) -> None:
    data = png(1, side=4)
    file = await upload(http, me.token, "diagram.png", data)

    key = file_uuid(file["id"])
    assert file["name"] == "diagram.png"
    assert file["mimeType"] == "image/png"
    assert file["sizeBytes"] == len(data)
    assert file["url"] == f"/files/{key}"
    mine = await gql.ok(NODE, {"id": file["id"]}, token=me.token)
    assert mine["node"] == {
        "__typename": "ChatFile",
        "id": file["id"],
        "name": "diagram.png",
        "mimeType": "image/png",
    }
    theirs = await gql.ok(NODE, {"id": file["id"]}, token=other.token)
    assert theirs["node"] is None


@pytest.mark.parametrize(
    ("declared", "data"),
    [("image/png", png(2)), ("image/jpeg", jpeg()), ("image/gif", gif()), ("image/webp", webp())],
)
async def test_each_allowed_type_is_accepted_as_itself(
    http: httpx.AsyncClient, me: Person, declared: str, data: bytes
) -> None:
    file = await upload(http, me.token, "picture", data, f"{declared}; charset=binary")
    assert (file["mimeType"], file["sizeBytes"]) == (declared, len(data))


async def test_a_multipart_upload_without_the_preflight_header_is_refused(
    http: httpx.AsyncClient, me: Person
) -> None:
    before = await stored_files()
    response = await upload_response(http, me.token, "a.png", png(3), preflight=False)
    assert response.status_code == 403
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "Apollo-Require-Preflight" in error["message"]
    assert await stored_files() == before


BAD_UPLOADS = [
    pytest.param("logo.png", SVG, "image/png", "SVG and other markup", id="svg-named-png"),
    pytest.param("logo.svg", SVG, "image/svg+xml", "type image/svg+xml is not allowed", id="svg"),
    pytest.param(
        "a.gif",
        png(4),
        "image/gif",
        "declared image/gif but the bytes are image/png",
        id="png-as-gif",
    ),
    pytest.param(
        "gifar.gif", gif() + ZIP_TAIL, "image/gif", "data follows the end of the GIF", id="gif+zip"
    ),
    pytest.param(
        "x.gif",
        gif() + b"<script>alert(1)</script>",
        "image/gif",
        "data follows the end of the GIF",
        id="gif+script",
    ),
    pytest.param(
        "x.png", png(5) + ZIP_TAIL, "image/png", "data follows the end of the PNG", id="png+zip"
    ),
    pytest.param(
        "x.jpg",
        jpeg() + b"<script>alert(1)</script>\xff\xd9",
        "image/jpeg",
        "data follows the end of the JPEG",
        id="jpeg+script",
    ),
    pytest.param("x.jpg", jpeg() + jpeg(), "image/jpeg", "data follows", id="jpeg+jpeg"),
    pytest.param(
        "cut.png", png(6, side=8)[:-20], "image/png", "the PNG is truncated", id="png-cut"
    ),
    pytest.param("cut.jpg", jpeg()[:-2], "image/jpeg", "the JPEG is truncated", id="jpeg-cut"),
    pytest.param("cut.gif", gif()[:-1], "image/gif", "the GIF is truncated", id="gif-cut"),
    pytest.param(
        "cut.webp", webp()[:-4], "image/webp", "the WebP image is truncated", id="webp-cut"
    ),
    pytest.param(  # the RIFF length grown to cover the script glued on
        "x.webp",
        b"RIFF" + (len(webp()) + 11).to_bytes(4, "little") + webp()[8:] + b"<script>1</script>\n",
        "image/webp",
        "the WebP image is",
        id="webp+script",
    ),
    pytest.param("empty.png", b"", "image/png", "the file is empty", id="empty"),
    pytest.param("notes.txt", b"hello", "text/plain", "type text/plain is not allowed", id="text"),
    pytest.param("a.png", png(7), None, "say the file's type", id="no-type"),
]


@pytest.mark.parametrize(("name", "data", "declared", "reason"), BAD_UPLOADS)
async def test_a_bad_upload_stores_nothing_and_says_why(
    http: httpx.AsyncClient,
    me: Person,
    name: str,
    data: bytes,
    declared: str | None,
    reason: str,
) -> None:
    before = await stored_files()
    error = await upload_error(http, me.token, name, data, declared)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "file"
    assert reason in error["message"]
    assert await stored_files() == before


async def test_ten_mib_is_accepted_and_one_byte_more_is_payload_too_large(
    http: httpx.AsyncClient, me: Person
) -> None:
    before = await stored_files()
    error = await upload_error(http, me.token, "big.png", png_of_size(CHAT_FILE_MAX_BYTES + 1))
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert error["extensions"]["maximum"] == CHAT_FILE_MAX_BYTES
    assert "at most 10 MiB" in error["message"]
    assert await stored_files() == before

    file = await upload(http, me.token, "big.png", png_of_size(CHAT_FILE_MAX_BYTES))
    assert file["sizeBytes"] == CHAT_FILE_MAX_BYTES
    assert await stored_files() == before + 1


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("re\x01port\x07\t\x1b\x7f.png", "report.png"),
        ("\u202egnp.exe", "gnp.exe"),  # a right-to-left override would show "exe.png"
        ("\u200fgnp\u061c.exe\u200e", "gnp.exe"),  # bidirectional marks, as in titles
        ("../../etc/passwd.png", ".._.._etc_passwd.png"),
        ("\x01\x02", "upload.png"),  # nothing left: a name from the type
    ],
)
async def test_control_characters_are_stripped_from_names(
    http: httpx.AsyncClient, me: Person, sent: str, kept: str
) -> None:
    file = await upload(http, me.token, sent, png(8))
    assert file["name"] == kept
    rows = await ChatFile.filter(id=file_uuid(file["id"])).only("id", "name")
    assert [row.name for row in rows] == [kept]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("a" + "あ" * 100, "a" + "あ" * 84),  # 301 bytes; byte 255 is inside the 85th あ
        ("😀" * 75, "😀" * 63),  # 300 bytes; byte 255 is inside the 64th emoji
    ],
)
async def test_a_300_byte_name_is_cut_to_255_bytes_at_a_character_boundary(
    http: httpx.AsyncClient, me: Person, sent: str, kept: str
) -> None:
    assert len(sent.encode()) >= 300
    file = await upload(http, me.token, sent, png(9 + len(sent)))
    assert file["name"] == kept
    assert len(file["name"].encode()) <= 255


@pytest.mark.parametrize(
    "name", ["スクリーンショット 2025-01-01 12.00.00.png", "party 🎉👩‍💻 café.png"]
)
async def test_unicode_names_round_trip_to_the_download_header(
    http: httpx.AsyncClient, me: Person, name: str
) -> None:
    data = png(abs(hash(name)) % 10_000 + 100)
    file = await upload(http, me.token, name, data)
    assert file["name"] == name

    response = await http.get(file["url"], headers={"Authorization": f"Bearer {me.token}"})
    assert response.status_code == 200
    assert response.content == data
    disposition = response.headers["content-disposition"]
    assert disposition.isascii()
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert urllib.parse.unquote(encoded, errors="strict") == name


async def test_the_same_bytes_are_one_file_per_owner(
    http: httpx.AsyncClient, me: Person, other: Person
) -> None:
    data = png(11, side=3)
    before = await stored_files()
    first = await upload(http, me.token, "first.png", data)
    again = await upload(http, me.token, "second name.png", data)
    assert again == first  # the first upload's file, name included
    theirs = await upload(http, other.token, "first.png", data)
    assert theirs["id"] != first["id"]
    assert await stored_files() == before + 2


# --- linking -------------------------------------------------------------------


async def test_create_chat_links_its_files_and_the_message_shows_them(
    http: httpx.AsyncClient, gql: GraphQLClient, me: Person
) -> None:
    shot = await upload(http, me.token, "shot.png", png(20))
    photo = await upload(http, me.token, "photo.jpg", jpeg(), "image/jpeg")

    created = await create_chat(
        gql,
        me,
        text("what is this?"),
        file_input(shot["id"]),
        file_input(photo["id"]),
        file_input(shot["id"]),
    )

    assert created["warnings"] == []
    chat = created["chat"]
    assert chat["files"] == [shot, photo]
    (message,) = chat["messages"]["nodes"]
    assert part_files(message["parts"]) == [shot, photo, shot]
    assert await linked_names(chat_uuid(chat["id"])) == ["shot.png", "photo.jpg"]


async def test_send_message_links_files_to_an_idle_chat(
    http: httpx.AsyncClient, gql: GraphQLClient, me: Person
) -> None:
    first = await upload(http, me.token, "one.png", png(21))
    chat = (await create_chat(gql, me, text("hi"), file_input(first["id"])))["chat"]
    await Chat.filter(id=chat_uuid(chat["id"])).update(status=ChatStatus.WAITING)
    second = await upload(http, me.token, "two.gif", gif(), "image/gif")

    sent = await gql.ok(
        SEND,
        {"input": {"chatId": chat["id"], "content": [file_input(second["id"]), text("and")]}},
        token=me.token,
    )

    result = sent["sendMessage"]
    assert result["queued"] is False
    assert part_files(result["message"]["parts"]) == [second]
    assert result["chat"]["files"] == [first, second]
    assert result["warnings"] == []


async def test_a_queued_message_links_its_files_when_it_is_sent(
    http: httpx.AsyncClient, gql: GraphQLClient, me: Person
) -> None:
    chat = (await create_chat(gql, me, text("busy")))["chat"]
    await Chat.filter(id=chat_uuid(chat["id"])).update(
        status=ChatStatus.RUNNING, worker_id=uuid.uuid4()
    )
    file = await upload(http, me.token, "later.webp", webp(), "image/webp")

    sent = await send(gql, me, {"chatId": chat["id"], "content": [file_input(file["id"])]})

    assert sent["queued"] is True
    assert part_files(sent["queuedMessage"]["parts"]) == [file]
    assert sent["chat"]["files"] == []  # not sent yet: not linked yet
    read = await gql.ok(CHAT, {"id": chat["id"]}, token=me.token)
    assert part_files(read["chat"]["queuedMessages"][0]["parts"]) == [file]

    promoted = await gql.ok(PROMOTE, {"id": sent["queuedMessage"]["id"]}, token=me.token)
    result = promoted["promoteQueuedMessage"]
    assert part_files(result["message"]["parts"]) == [file]
    assert result["chat"]["files"] == [file]
    assert result["warnings"] == []


async def test_interrupting_an_unclaimed_busy_chat_links_the_files_it_sends_now(
    http: httpx.AsyncClient, gql: GraphQLClient, me: Person
) -> None:
    chat = (await create_chat(gql, me, text("busy")))["chat"]
    await Chat.filter(id=chat_uuid(chat["id"])).update(status=ChatStatus.PENDING, worker_id=None)
    file = await upload(http, me.token, "now.png", png(22))

    sent = await send(
        gql,
        me,
        {"chatId": chat["id"], "content": [file_input(file["id"])], "busyBehavior": "INTERRUPT"},
    )

    assert sent["queuedMessage"] is None
    assert part_files(sent["message"]["parts"]) == [file]
    assert sent["chat"]["files"] == [file]


async def test_edit_message_links_the_replacement_files(
    http: httpx.AsyncClient, gql: GraphQLClient, me: Person
) -> None:
    chat = (await create_chat(gql, me, text("draft")))["chat"]
    (message,) = chat["messages"]["nodes"]
    file = await upload(http, me.token, "fix.png", png(23))

    content = [text("this"), file_input(file["id"])]
    edited = (
        await gql.ok(
            EDIT, {"input": {"messageId": message["id"], "content": content}}, token=me.token
        )
    )["editMessage"]

    assert part_files(edited["message"]["parts"]) == [file]
    assert edited["chat"]["files"] == [file]


async def test_someone_elses_file_is_not_found_and_nothing_is_written(
    gql: GraphQLClient, me: Person, other: Person
) -> None:
    theirs = file_gid(await stored(other, 30))
    missing = global_id.encode("ChatFile", uuid.uuid4())
    mine = file_gid(await stored(me, 31))
    for file in (theirs, missing):
        error = await gql.error(
            CREATE,
            {"input": {"content": [text("look"), file_input(mine), file_input(file)]}},
            token=me.token,
        )
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert error["message"] == "file not found"
        assert await rows_of(me) == (0, 0, 0, 0)

    idle = (await create_chat(gql, me, text("idle")))["chat"]
    busy = (await create_chat(gql, me, text("busy")))["chat"]
    await Chat.filter(id=chat_uuid(idle["id"])).update(status=ChatStatus.WAITING)
    await Chat.filter(id=chat_uuid(busy["id"])).update(status=ChatStatus.RUNNING)
    before = await rows_of(me)
    (message,) = idle["messages"]["nodes"]
    for chat in (idle, busy):
        error = await gql.error(
            SEND,
            {"input": {"chatId": chat["id"], "content": [file_input(mine), file_input(theirs)]}},
            token=me.token,
        )
        assert error["extensions"]["code"] == "NOT_FOUND"
    error = await gql.error(
        EDIT,
        {"input": {"messageId": message["id"], "content": [file_input(theirs)]}},
        token=me.token,
    )
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await rows_of(me) == before
    assert (await Chat.get(id=chat_uuid(idle["id"]))).status is ChatStatus.WAITING


async def test_a_chat_links_at_most_fifty_files_and_says_which_were_skipped(
    gql: GraphQLClient, me: Person
) -> None:
    files = [file_gid(await stored(me, 100 + i)) for i in range(53)]

    created = await create_chat(gql, me, text("many"), *map(file_input, files[:52]))

    assert created["warnings"] == [CAP_WARNING.format(2)]
    chat = created["chat"]
    assert [f["id"] for f in chat["files"]] == files[:50]
    (message,) = chat["messages"]["nodes"]
    assert len(part_files(message["parts"])) == 52  # the message keeps every part

    await Chat.filter(id=chat_uuid(chat["id"])).update(status=ChatStatus.WAITING)
    content = [file_input(files[0]), file_input(files[51]), file_input(files[52])]
    sent = await send(gql, me, {"chatId": chat["id"], "content": content})
    assert sent["warnings"] == [CAP_WARNING.format(2)]  # files[0] is linked already
    assert sent["message"] is not None
    assert [f["id"] for f in sent["chat"]["files"]] == files[:50]

    await Chat.filter(id=chat_uuid(chat["id"])).update(status=ChatStatus.WAITING)
    again = await send(gql, me, {"chatId": chat["id"], "content": [file_input(files[1])]})
    assert again["warnings"] == []  # nothing new to link
