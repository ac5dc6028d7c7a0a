"""``POST /files`` (raw bytes) and ``GET /files/{id}``: status codes, headers, credentials.

Uploads must follow the same rules as the GraphQL path and leave nothing
stored when refused; downloads are private, immutable and never sniffed.
"""

from __future__ import annotations

import hashlib
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from db.vocabulary import CHAT_FILE_MAX_BYTES
from resolvers import global_id
from server.file_routes import IMMUTABLE
from server.request_auth import COOKIE_NAME
from tests.harness import GraphQLClient, new_person
from tests.uploads import SVG, gif, jpeg, png, png_of_size, stored_files, upload, webp

NODE = "query($id: ID!) { node(id: $id) { ... on ChatFile { id name mimeType url } } }"
MIB = 1024 * 1024


async def new_token() -> str:
    """A fresh member's session token."""
    return (await new_person("r")).token


@pytest.fixture
async def token(admin_token: str) -> str:
    return await new_token()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_file(
    http: httpx.AsyncClient,
    token: str | None,
    data: bytes,
    content_type: str | None = "image/png",
    disposition: str | bytes | None = 'inline; filename="shot.png"',
) -> httpx.Response:
    headers: dict[str, Any] = {} if token is None else bearer(token)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if disposition is not None:
        headers["Content-Disposition"] = disposition
    return await http.post("/files", content=data, headers=headers)


async def posted_id(http: httpx.AsyncClient, token: str, data: bytes, **kw: Any) -> str:
    response = await post_file(http, token, data, **kw)
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


def file_key(file_id: str) -> uuid.UUID:
    return global_id.decode_uuid(file_id, "ChatFile")


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    (error,) = response.json()["errors"]
    return response.status_code, error["extensions"]["code"], error["message"]


def extended_name(disposition: str) -> str:
    """The RFC 5987 ``filename*`` of a Content-Disposition header, decoded."""
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    return urllib.parse.unquote(encoded, errors="strict")


# -- POST /files --------------------------------------------------------------------------


async def test_post_files_stores_the_body_and_answers_201_with_a_usable_id(
    http: httpx.AsyncClient, gql: GraphQLClient, token: str
) -> None:
    data = png(1, side=5)
    response = await post_file(http, token, data)

    assert response.status_code == 201
    file_id = response.json()["id"]
    assert response.headers["location"] == f"/files/{file_key(file_id)}"
    node = (await gql.ok(NODE, {"id": file_id}, token=token))["node"]
    assert node == {
        "id": file_id,
        "name": "shot.png",
        "mimeType": "image/png",
        "url": response.headers["location"],
    }
    created = await gql.ok(
        "mutation($f: ID!) { createChat(input: {content: [{fileId: $f}]}) "
        "{ chat { files { id } } } }",
        {"f": file_id},
        token=token,
    )
    assert created["createChat"]["chat"]["files"] == [{"id": file_id}]


async def test_post_files_dedupes_by_content_per_owner(
    http: httpx.AsyncClient, gql: GraphQLClient, token: str
) -> None:
    data = png(2, side=3)
    before = await stored_files()
    first = await posted_id(http, token, data)
    assert await posted_id(http, token, data, disposition='inline; filename="again.png"') == first
    graphql_upload = await upload(http, token, "third.png", data)
    assert graphql_upload["id"] == first
    assert graphql_upload["name"] == "shot.png"  # the first upload's file, as it was
    theirs = await posted_id(http, await new_token(), data)
    assert theirs != first
    assert await stored_files() == before + 2


@pytest.mark.parametrize(
    ("data", "declared"),
    [(jpeg(), "image/jpeg"), (gif(), "image/gif"), (webp(), "image/webp")],
)
async def test_post_files_accepts_every_allowed_type(
    http: httpx.AsyncClient, token: str, data: bytes, declared: str
) -> None:
    file_id = await posted_id(http, token, data, content_type=declared)
    response = await http.get(f"/files/{file_key(file_id)}", headers=bearer(token))
    assert response.headers["content-type"] == declared
    assert response.content == data


NAMES = ["スクリーンショット 2025-01-01.png", "🎉 party 👩‍💻.png"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("carried", ["rfc5987", "raw-utf8"])
async def test_unicode_names_round_trip_through_post_files_and_the_download(
    http: httpx.AsyncClient, gql: GraphQLClient, token: str, name: str, carried: str
) -> None:
    if carried == "rfc5987":
        quoted = urllib.parse.quote(name, safe="")
        disposition: str | bytes = (
            f"attachment; filename=\"fallback.png\"; filename*=UTF-8''{quoted}"
        )
    else:
        disposition = f'attachment; filename="{name}"'.encode()
    data = png(10 + NAMES.index(name))
    file_id = await posted_id(http, token, data, disposition=disposition)

    node = (await gql.ok(NODE, {"id": file_id}, token=token))["node"]
    assert node["name"] == name
    response = await http.get(node["url"], headers=bearer(token))
    header = response.headers["content-disposition"]
    assert header.isascii()
    assert header.startswith('inline; filename="')
    assert extended_name(header) == name


async def test_the_same_name_rules_apply_to_post_files(
    http: httpx.AsyncClient, gql: GraphQLClient, token: str
) -> None:
    control = urllib.parse.quote("re\x01port\x1b\x7f.png")
    long = urllib.parse.quote("a" + "あ" * 100)
    for seed, (disposition, kept) in enumerate(
        (
            (f"inline; filename*=UTF-8''{control}", "report.png"),
            (f"inline; filename*=UTF-8''{long}", "a" + "あ" * 84),
            (None, "upload.png"),
        )
    ):
        data = png(20 + seed)
        file_id = await posted_id(http, token, data, disposition=disposition)
        node = (await gql.ok(NODE, {"id": file_id}, token=token))["node"]
        assert node["name"] == kept


@pytest.mark.parametrize(
    ("data", "declared", "reason"),
    [
        (SVG, "image/png", "SVG and other markup are not allowed"),
        (png(30), "image/gif", "declared image/gif but the bytes are image/png"),
        (gif() + b"PK\x05\x06" + bytes(18), "image/gif", "data follows the end of the GIF"),
        (png(31)[:-7], "image/png", "the PNG is truncated"),
        (b"", "image/png", "the file is empty"),
        (SVG, "image/svg+xml", "type image/svg+xml is not allowed"),
        (png(32), None, "say the file's type"),
    ],
)
async def test_post_files_refuses_bad_bytes_with_400_and_stores_nothing(
    http: httpx.AsyncClient, token: str, data: bytes, declared: str | None, reason: str
) -> None:
    before = await stored_files()
    status, code, message = refusal(await post_file(http, token, data, declared))
    assert (status, code) == (400, "BAD_USER_INPUT")
    assert reason in message
    assert await stored_files() == before


async def test_post_files_over_10_mib_is_413_before_reading_it(
    http: httpx.AsyncClient, token: str
) -> None:
    before = await stored_files()
    big = png_of_size(CHAT_FILE_MAX_BYTES + 1)
    pulled: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        async for chunk in _chunks(big):
            pulled.append(len(chunk))
            yield chunk

    headers = {**bearer(token), "Content-Type": "image/png", "Content-Length": str(len(big))}
    response = await http.post("/files", content=body(), headers=headers)
    assert refusal(response) == (413, "PAYLOAD_TOO_LARGE", "file: at most 10 MiB")
    assert sum(pulled) <= MIB  # refused on the declared length, not after reading
    assert await stored_files() == before


async def _chunks(data: bytes, size: int = MIB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_streamed_body_without_content_length_is_capped_while_reading(
    live_server: str, token: str
) -> None:
    before = await stored_files()
    headers = {**bearer(token), "Content-Type": "image/png"}
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        fits = png_of_size(3 * MIB + 5, seed=40)
        accepted = await client.post("/files", content=_chunks(fits), headers=headers)
        assert accepted.request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in accepted.request.headers
        assert accepted.status_code == 201, accepted.text

        big = png_of_size(CHAT_FILE_MAX_BYTES + 1, seed=41)
        refused = await client.post("/files", content=_chunks(big), headers=headers)
        assert refused.request.headers["transfer-encoding"] == "chunked"
        assert refusal(refused) == (413, "PAYLOAD_TOO_LARGE", "file: at most 10 MiB")
    assert await stored_files() == before + 1


async def test_post_files_needs_credentials(http: httpx.AsyncClient) -> None:
    before = await stored_files()
    assert refusal(await post_file(http, None, png(50)))[:2] == (401, "UNAUTHENTICATED")
    bad = await post_file(http, "agq_not-a-real-token", png(50))
    assert refusal(bad)[:2] == (401, "UNAUTHENTICATED")
    assert await stored_files() == before


# -- GET /files/{id} ----------------------------------------------------------------------


async def test_a_download_is_private_immutable_and_never_sniffed(
    http: httpx.AsyncClient, token: str
) -> None:
    data = png(60, side=6)
    file = await upload(http, token, "chart.png", data)

    response = await http.get(file["url"], headers=bearer(token))

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["cache-control"] == IMMUTABLE == "private, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["content-disposition"] == (
        "inline; filename=\"chart.png\"; filename*=UTF-8''chart.png"
    )
    by_global_id = await http.get(f"/files/{file['id']}", headers=bearer(token))
    assert by_global_id.content == data


async def test_a_matching_if_none_match_is_304_without_a_body(
    http: httpx.AsyncClient, token: str
) -> None:
    file = await upload(http, token, "etag.png", png(61))
    first = await http.get(file["url"], headers=bearer(token))
    etag = first.headers["etag"]

    again = await http.get(file["url"], headers={**bearer(token), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == IMMUTABLE
    among = await http.get(
        file["url"], headers={**bearer(token), "If-None-Match": f'"other", {etag}'}
    )
    assert among.status_code == 304
    stale = await http.get(file["url"], headers={**bearer(token), "If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == first.content


async def test_someone_elses_file_is_404_and_no_credentials_is_401(
    http: httpx.AsyncClient, token: str
) -> None:
    file = await upload(http, token, "mine.png", png(62))
    stranger = await new_token()

    theirs = await http.get(file["url"], headers=bearer(stranger))
    assert refusal(theirs) == (404, "NOT_FOUND", "file not found")
    unknown = await http.get(f"/files/{uuid.uuid4()}", headers=bearer(token))
    assert refusal(unknown)[:2] == (404, "NOT_FOUND")
    garbage = await http.get("/files/not-an-id", headers=bearer(token))
    assert refusal(garbage)[:2] == (404, "NOT_FOUND")
    anonymous = await http.get(file["url"])
    assert refusal(anonymous)[:2] == (401, "UNAUTHENTICATED")
    bad_token = await http.get(file["url"], headers=bearer("agq_not-a-real-token"))
    assert refusal(bad_token)[:2] == (401, "UNAUTHENTICATED")


async def test_the_query_token_and_the_cookie_work_like_the_header(
    http: httpx.AsyncClient, token: str
) -> None:
    data = png(63)
    file = await upload(http, token, "img.png", data)

    by_query = await http.get(file["url"], params={"session_token": token})
    assert (by_query.status_code, by_query.content) == (200, data)
    by_cookie = await http.get(file["url"], headers={"Cookie": f"{COOKIE_NAME}={token}"})
    assert (by_cookie.status_code, by_cookie.content) == (200, data)
    stranger = await new_token()
    theirs = await http.get(file["url"], params={"session_token": stranger})
    assert theirs.status_code == 404
