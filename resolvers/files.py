"""Uploading, finding and downloading chat files: the rules both upload paths share.

GraphQL multipart and ``POST /files`` differ only in how the bytes and the
name arrive; everything they decide is decided here, before anything is
stored, so a refused upload never leaves a row behind.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Any

from db.chat_files import FileBlob, FileMeta, missing_files, owned_file, store_file
from db.text_rules import strip_invisible
from db.vocabulary import CHAT_FILE_MAX_BYTES, CHAT_FILE_TYPES, FILE_NAME_MAX_BYTES, ErrorCode
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.errors import ApiError, bad_input, not_found
from resolvers.image_format import ImageRejected, image_type
from resolvers.permissions import require_viewer

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def too_large() -> ApiError:
    mib = CHAT_FILE_MAX_BYTES // (1024 * 1024)
    return ApiError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"file: at most {mib} MiB",
        field="file",
        maximum=CHAT_FILE_MAX_BYTES,
    )


async def read_capped(chunks: AsyncIterator[bytes]) -> bytes:
    """Collect a stream, refusing it as soon as it passes the file size cap."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > CHAT_FILE_MAX_BYTES:
            raise too_large()
    return bytes(buffer)


def normalize_name(name: str | None, mime_type: str) -> str:
    """Control characters and bidirectional formatting out (an override can make
    "gnp.exe" display as "exe.png"), at most 255 UTF-8 bytes cut at a character
    boundary; an empty result gets a name from the type."""
    cleaned = strip_invisible(name or "").strip()
    cleaned = cleaned.replace("/", "_").replace("\\", "_")
    encoded = cleaned.encode("utf-8")
    if len(encoded) > FILE_NAME_MAX_BYTES:
        cleaned = encoded[:FILE_NAME_MAX_BYTES].decode("utf-8", "ignore")
    return cleaned or f"upload.{_EXTENSIONS.get(mime_type, 'bin')}"


def _declared(content_type: str | None) -> str:
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if not declared:
        raise bad_input("file", "say the file's type (Content-Type)")
    if declared not in CHAT_FILE_TYPES:
        raise bad_input(
            "file",
            f"type {declared} is not allowed; upload png, jpeg, gif or webp",
            declaredType=declared,
        )
    return declared


async def upload_file(
    ctx: RequestContext, name: str | None, content_type: str | None, data: bytes
) -> FileMeta:
    """Check and store one upload; the same bytes from the same owner dedupe."""
    viewer = require_viewer(ctx)
    declared = _declared(content_type)
    if len(data) > CHAT_FILE_MAX_BYTES:
        raise too_large()
    try:
        detected = image_type(data)
    except ImageRejected as exc:
        raise bad_input("file", str(exc), declaredType=declared) from None
    if detected != declared:
        raise bad_input(
            "file",
            f"declared {declared} but the bytes are {detected}",
            declaredType=declared,
            detectedType=detected,
        )
    meta, _created = await store_file(viewer.id, normalize_name(name, detected), detected, data)
    return meta


async def download(ctx: RequestContext, raw_id: str) -> FileBlob:
    """The viewer's own file with its bytes; anyone else's is NOT_FOUND.

    Accepts the global id or the bare UUID (what ``POST /files`` answers).
    """
    viewer = require_viewer(ctx)
    key = _file_key(raw_id)
    blob = None if key is None else await owned_file(viewer.id, key)
    if blob is None:
        raise not_found("file")
    return blob


def _file_key(raw_id: str) -> uuid.UUID | None:
    decoded = global_id.decode(raw_id)
    raw = decoded[1] if decoded is not None and decoded[0] == "ChatFile" else raw_id
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def files_by_ids(ctx: RequestContext, keys: list[uuid.UUID]) -> dict[Any, Any]:
    """``node(id)`` for files: only the viewer's own."""
    if ctx.viewer is None:
        return {}
    metas = await ctx.loaders.files.load_many(keys)
    return {m.id: m for m in metas if m is not None and m.owner_id == ctx.viewer.id}


async def require_own_files(ctx: RequestContext, keys: list[uuid.UUID]) -> None:
    """Files a message refers to must be the sender's: NOT_FOUND otherwise,
    before anything is written."""
    viewer = require_viewer(ctx)
    if await missing_files(viewer.id, keys):
        raise not_found("file")


def file_url(meta: FileMeta) -> str:
    return f"/files/{meta.id}"


def content_disposition(name: str) -> str:
    """``inline`` with an ASCII fallback and the exact UTF-8 name (RFC 6266/5987)."""
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    fallback = fallback.replace('"', "_").replace("\\", "_") or "file"
    encoded = urllib.parse.quote(name, safe="")
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
