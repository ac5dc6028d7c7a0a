"""Storing uploaded files, linking them to chats, and reading them back.

Every statement is hand-written SQL on the pool (or the caller's transaction)
so metadata reads never touch the ``data`` column, and dedupe is one
``INSERT … ON CONFLICT`` instead of a read-then-write race.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db import raw_sql
from db.parts import FilePart, Part
from db.vocabulary import CHAT_FILE_LINKS_MAX

log = logging.getLogger(__name__)

META_COLUMNS = "id, owner_id, name, mime_type, size_bytes, sha256, created_at"


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What clients see of a file: everything but its bytes."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    mime_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FileBlob:
    meta: FileMeta
    data: bytes


def _meta(row: Any) -> FileMeta:
    return FileMeta(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        mime_type=row["mime_type"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        created_at=row["created_at"],
    )


async def store_file(
    owner_id: uuid.UUID, name: str, mime_type: str, data: bytes
) -> tuple[FileMeta, bool]:
    """Insert the file, or return the owner's existing file with the same bytes.

    Returns ``(meta, created)``. The unique (owner, sha256) pair makes
    concurrent uploads of the same bytes end with one row.
    """
    digest = hashlib.sha256(data).hexdigest()
    row = await raw_sql.fetchrow(
        f"INSERT INTO chat_files (id, owner_id, name, mime_type, size_bytes, sha256, data,"
        f" created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())"
        f" ON CONFLICT (owner_id, sha256) DO NOTHING RETURNING {META_COLUMNS}",
        uuid.uuid4(),
        owner_id,
        name,
        mime_type,
        len(data),
        digest,
        data,
    )
    if row is not None:
        return _meta(row), True
    existing = await raw_sql.fetchrow(
        f"SELECT {META_COLUMNS} FROM chat_files WHERE owner_id = $1 AND sha256 = $2",
        owner_id,
        digest,
    )
    return _meta(existing), False


async def file_metas(keys: Iterable[uuid.UUID]) -> dict[uuid.UUID, FileMeta]:
    """Metadata of the given files, by id (absent ids are simply missing)."""
    rows = await raw_sql.fetch(
        f"SELECT {META_COLUMNS} FROM chat_files WHERE id = ANY($1::uuid[])", list(keys)
    )
    return {row["id"]: _meta(row) for row in rows}


async def linked_files(chat_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[FileMeta]]:
    """Each chat's linked files in link order, for a whole page of chats at once."""
    rows = await raw_sql.fetch(
        "SELECT l.chat_id, f.id, f.owner_id, f.name, f.mime_type, f.size_bytes, f.sha256,"
        " f.created_at FROM chat_file_links l JOIN chat_files f ON f.id = l.file_id"
        " WHERE l.chat_id = ANY($1::uuid[]) ORDER BY l.chat_id, l.id",
        list(chat_ids),
    )
    grouped: dict[uuid.UUID, list[FileMeta]] = {}
    for row in rows:
        grouped.setdefault(row["chat_id"], []).append(_meta(row))
    return grouped


async def owned_file(owner_id: uuid.UUID, file_id: uuid.UUID) -> FileBlob | None:
    """The file with its bytes, when ``owner_id`` owns it (downloads)."""
    row = await raw_sql.fetchrow(
        f"SELECT {META_COLUMNS}, data FROM chat_files WHERE id = $1 AND owner_id = $2",
        file_id,
        owner_id,
    )
    return None if row is None else FileBlob(_meta(row), bytes(row["data"]))


async def file_blobs(keys: Iterable[uuid.UUID]) -> dict[uuid.UUID, FileBlob]:
    """Files with their bytes, for the daemon building a prompt."""
    rows = await raw_sql.fetch(
        f"SELECT {META_COLUMNS}, data FROM chat_files WHERE id = ANY($1::uuid[])", list(keys)
    )
    return {row["id"]: FileBlob(_meta(row), bytes(row["data"])) for row in rows}


def part_file_ids(parts: Iterable[Part]) -> list[uuid.UUID]:
    """The distinct file ids a message's parts refer to, in order."""
    seen: dict[uuid.UUID, None] = {}
    for part in parts:
        if isinstance(part, FilePart):
            seen.setdefault(uuid.UUID(part.file_id), None)
    return list(seen)


def json_file_ids(parts: Iterable[dict[str, Any]]) -> list[uuid.UUID]:
    """The same, from stored part JSON (queued messages keep only JSON)."""
    seen: dict[uuid.UUID, None] = {}
    for part in parts:
        if part.get("type") == "file" and part.get("fileId"):
            seen.setdefault(uuid.UUID(str(part["fileId"])), None)
    return list(seen)


async def missing_files(owner_id: uuid.UUID, keys: list[uuid.UUID]) -> list[uuid.UUID]:
    """Which of ``keys`` the owner does not own (absent or someone else's)."""
    if not keys:
        return []
    rows = await raw_sql.fetch(
        "SELECT id FROM chat_files WHERE id = ANY($1::uuid[]) AND owner_id = $2", keys, owner_id
    )
    owned = {row["id"] for row in rows}
    return [key for key in keys if key not in owned]


async def link_files(conn: Any, chat_id: uuid.UUID, keys: list[uuid.UUID]) -> list[str]:
    """Link files to a chat inside the caller's transaction; returns warnings.

    Already-linked files are no-ops. A chat holds at most CHAT_FILE_LINKS_MAX
    links: the files that would pass it are skipped and reported, never an
    error — the message itself is still sent. The chat row must be locked by
    the caller (every linking path locks it), so the count cannot race.
    """
    if not keys:
        return []
    ids = [str(key) for key in keys]
    present = await conn.execute_query_dict(
        "SELECT file_id::text AS id FROM chat_file_links WHERE chat_id = $1", [chat_id]
    )
    linked = {row["id"] for row in present}
    new = [key for key in ids if key not in linked]
    if not new:
        return []
    room = max(0, CHAT_FILE_LINKS_MAX - len(linked))
    accepted, skipped = new[:room], new[room:]
    if accepted:
        await conn.execute_query(
            "INSERT INTO chat_file_links (chat_id, file_id, created_at)"
            " SELECT $1, unnest($2::uuid[]), now() ON CONFLICT (chat_id, file_id) DO NOTHING",
            [chat_id, accepted],
        )
    if not skipped:
        return []
    log.info("chat %s: %d file link(s) over the cap skipped", chat_id, len(skipped))
    return [
        f"file linking skipped: batch of {len(skipped)} file(s) would exceed limit of "
        f"{CHAT_FILE_LINKS_MAX}"
    ]
