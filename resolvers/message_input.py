"""Turning client message content into stored parts, with the input rules.

Inputs are duck-typed (the GraphQL input objects satisfy these protocols), so
this package never imports the schema.
"""

from __future__ import annotations

from typing import Protocol

from db.parts import FilePart, FileReferencePart, Part, TextPart
from db.vocabulary import MESSAGE_PARTS_MAX, TEXT_PART_MAX
from resolvers import global_id
from resolvers.errors import bad_input


class FileReferenceLike(Protocol):
    file_name: str
    start_line: int | None
    end_line: int | None
    content: str | None


class PartInputLike(Protocol):
    text: str | None
    file_id: str | None
    file_reference: FileReferenceLike | None


def parse_content(content: list[PartInputLike], field: str = "content") -> list[Part]:
    """Exactly one of text / fileId / fileReference per part; at least one part."""
    if not content:
        raise bad_input(field, "needs at least one part")
    if len(content) > MESSAGE_PARTS_MAX:
        raise bad_input(field, f"at most {MESSAGE_PARTS_MAX} parts")
    parts: list[Part] = []
    for i, item in enumerate(content):
        where = f"{field}[{i}]"
        given = [v for v in (item.text, item.file_id, item.file_reference) if v is not None]
        if len(given) != 1:
            raise bad_input(where, "set exactly one of text, fileId, fileReference")
        if item.text is not None:
            if not item.text.strip():
                raise bad_input(f"{where}.text", "must not be empty")
            if len(item.text) > TEXT_PART_MAX:
                raise bad_input(f"{where}.text", f"at most {TEXT_PART_MAX} characters")
            parts.append(TextPart(item.text))
        elif item.file_id is not None:
            key = global_id.decode_uuid(item.file_id, "ChatFile", field=f"{where}.fileId")
            parts.append(FilePart(str(key)))
        else:
            ref = item.file_reference
            assert ref is not None
            if not ref.file_name.strip():
                raise bad_input(f"{where}.fileReference.fileName", "must not be empty")
            for name, line in (("startLine", ref.start_line), ("endLine", ref.end_line)):
                if line is not None and line < 1:
                    raise bad_input(f"{where}.fileReference.{name}", "lines start at 1")
            if ref.start_line and ref.end_line and ref.end_line < ref.start_line:
                raise bad_input(f"{where}.fileReference.endLine", "before startLine")
            parts.append(
                FileReferencePart(ref.file_name, ref.start_line, ref.end_line, ref.content)
            )
    return parts
