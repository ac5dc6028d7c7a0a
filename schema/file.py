"""Chat files: the type, and uploading one through the GraphQL multipart spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.file_uploads import Upload

from db.chat_files import FileMeta
from resolvers import files
from schema.info import Info
from schema.node import Node, global_id_field, row_is


@strawberry.type(description="An uploaded image. Immutable: same id, same bytes, forever.")
class ChatFile(Node):
    id: strawberry.ID = global_id_field("ChatFile")
    name: str
    mime_type: str
    size_bytes: int
    created_at: datetime

    @strawberry.field(
        description="Where to GET the bytes, with the same credentials as GraphQL "
        "(Authorization header, session cookie or ?session_token=)."
    )
    def url(self, root: FileMeta) -> str:
        return files.file_url(root)

    is_type_of = row_is(FileMeta)


async def _chunks(upload: Any) -> Any:
    while chunk := await upload.read(256 * 1024):
        yield chunk


@strawberry.type
class FileMutations:
    @strawberry.mutation(
        description="Upload a png, jpeg, gif or webp image (at most 10 MiB; the bytes must "
        "be the declared type). The same bytes again return the same file."
    )
    async def upload_file(self, info: Info, file: Upload) -> ChatFile:
        upload: Any = file
        data = await files.read_capped(_chunks(upload))
        meta = await files.upload_file(info.context, upload.filename, upload.content_type, data)
        return cast(ChatFile, meta)
