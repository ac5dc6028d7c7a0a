"""Images made in code, and uploads the way clients send them.

Every image here is a whole, valid file of its format (built from the format's
own structure, no imaging library); the helpers that break them say how.
Uploads go through the real HTTP paths: a GraphQL multipart request (built by
hand, so a test controls every byte of the file name) or ``POST /files``.
"""

from __future__ import annotations

import random
import struct
import uuid
import zlib
from typing import Any

import httpx
import orjson

from db.models import ChatFile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREFLIGHT = {"Apollo-Require-Preflight": "true"}
UPLOAD = """
mutation($file: Upload!) {
  uploadFile(file: $file) { id name mimeType sizeBytes url }
}"""


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(seed: int = 0, *, side: int = 1) -> bytes:
    """A ``side`` × ``side`` RGB PNG whose pixels (hence bytes) depend on ``seed``."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(3 * side) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows, 1))
        + png_chunk(b"IEND", b"")
    )


def png_of_size(total: int, seed: int = 0) -> bytes:
    """A valid PNG of exactly ``total`` bytes: a 1×1 image padded with a text chunk."""
    base = png(seed)
    iend = png_chunk(b"IEND", b"")
    head = base[: -len(iend)]
    keyword = b"Comment\x00"
    filler = total - len(base) - 12 - len(keyword)
    assert filler >= 0, f"a PNG cannot be as small as {total} bytes"
    text = keyword + (f"{seed}:".encode() + b"padding " * (filler // 8 + 1))[:filler]
    data = head + png_chunk(b"tEXt", text) + iend
    assert len(data) == total
    return data


def jpeg() -> bytes:
    """A 1×1 grey baseline JPEG: quantisation, frame, Huffman tables, one scan."""

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    one_code = bytes([1] + [0] * 15)  # one Huffman code of length 1
    return (
        b"\xff\xd8"
        + segment(0xDB, b"\x00" + b"\x01" * 64)
        + segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00")
        + segment(0xC4, b"\x00" + one_code + b"\x00")  # DC: category 0
        + segment(0xC4, b"\x10" + one_code + b"\x00")  # AC: end of block
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + b"\x3f"  # DC 0, EOB, padded with ones
        + b"\xff\xd9"
    )


def gif() -> bytes:
    """The classic 1×1 GIF89a: a two-colour table, one image, the trailer."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
        b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
    )


def webp() -> bytes:
    """A 1×1 lossless WebP (RIFF, WEBP, one VP8L chunk padded to even length)."""
    vp8l = b"\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07"
    chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l + b"\x00"
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1">'
    b"<script>alert(document.cookie)</script></svg>"
)
# A zip archive's end-of-central-directory record: what a GIFAR glues after the GIF.
ZIP_TAIL = b"PK\x05\x06" + b"\x00" * 18


# -- GraphQL multipart -------------------------------------------------------------------


def multipart_upload(
    name: str, data: bytes, content_type: str | None, query: str = UPLOAD
) -> tuple[bytes, str]:
    """Body and Content-Type of a GraphQL multipart request uploading one file as
    ``$file``. The name goes in raw UTF-8 exactly as given (browsers do the same)."""
    assert not set(name) & set('"\r\n'), "these cannot appear raw in a part header"
    boundary = f"----agentgql{uuid.uuid4().hex}"
    operations = orjson.dumps({"query": query, "variables": {"file": None}})
    file_map = orjson.dumps({"0": ["variables.file"]})

    def field(disposition: bytes, body: bytes, extra: bytes = b"") -> bytes:
        return (
            f"--{boundary}\r\n".encode()
            + b"Content-Disposition: form-data; "
            + disposition
            + b"\r\n"
            + extra
            + b"\r\n"
            + body
            + b"\r\n"
        )

    file_type = b"" if content_type is None else f"Content-Type: {content_type}\r\n".encode()
    body = (
        field(b'name="operations"', operations)
        + field(b'name="map"', file_map)
        + field(b'name="0"; filename="' + name.encode() + b'"', data, file_type)
        + f"--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def upload_response(
    http: httpx.AsyncClient,
    token: str | None,
    name: str,
    data: bytes,
    content_type: str | None = "image/png",
    *,
    preflight: bool = True,
) -> httpx.Response:
    body, form_type = multipart_upload(name, data, content_type)
    headers = {"Content-Type": form_type, **(PREFLIGHT if preflight else {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post("/graphql", content=body, headers=headers)


async def upload_result(
    http: httpx.AsyncClient,
    token: str,
    name: str,
    data: bytes,
    content_type: str | None = "image/png",
) -> dict[str, Any]:
    """The whole GraphQL answer to an upload (data or errors)."""
    response = await upload_response(http, token, name, data, content_type)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def upload(
    http: httpx.AsyncClient,
    token: str,
    name: str,
    data: bytes,
    content_type: str | None = "image/png",
) -> dict[str, Any]:
    """The uploaded ChatFile of an upload that must succeed."""
    result = await upload_result(http, token, name, data, content_type)
    assert "errors" not in result, result["errors"]
    file: dict[str, Any] = result["data"]["uploadFile"]
    return file


async def upload_error(
    http: httpx.AsyncClient,
    token: str,
    name: str,
    data: bytes,
    content_type: str | None = "image/png",
) -> dict[str, Any]:
    """The one error of an upload that must fail."""
    result = await upload_result(http, token, name, data, content_type)
    assert result.get("data") is None, result
    (error,) = result["errors"]
    return dict(error)


async def stored_files() -> int:
    """Rows in ``chat_files``: a refused upload must leave this unchanged."""
    return await ChatFile.all().count()
