"""Message parts: the typed content of a message, stored as a jsonb array.

One dataclass per part type; the GraphQL ``MessagePart`` union describes them and
the daemon produces them. Stored JSON uses the reference system's ``type`` names
(``text``, ``tool-call``, …) so rows stay readable in SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class TextPart:
    text: str


@dataclass(slots=True)
class ReasoningPart:
    text: str


@dataclass(slots=True)
class ToolCallPart:
    tool_call_id: str
    tool_name: str
    args: Any


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    tool_name: str
    result: Any
    is_error: bool = False


@dataclass(slots=True)
class FilePart:
    file_id: str


@dataclass(slots=True)
class FileReferencePart:
    file_name: str
    start_line: int | None = None
    end_line: int | None = None
    content: str | None = None


@dataclass(slots=True)
class SourcePart:
    url: str
    title: str | None = None


Part = (
    TextPart
    | ReasoningPart
    | ToolCallPart
    | ToolResultPart
    | FilePart
    | FileReferencePart
    | SourcePart
)


def to_json(part: Part) -> dict[str, Any]:
    match part:
        case TextPart(text):
            return {"type": "text", "text": text}
        case ReasoningPart(text):
            return {"type": "reasoning", "text": text}
        case ToolCallPart(call_id, name, args):
            return {"type": "tool-call", "toolCallId": call_id, "toolName": name, "args": args}
        case ToolResultPart(call_id, name, result, is_error):
            return {
                "type": "tool-result",
                "toolCallId": call_id,
                "toolName": name,
                "result": result,
                "isError": is_error,
            }
        case FilePart(file_id):
            return {"type": "file", "fileId": file_id}
        case FileReferencePart(name, start, end, content):
            return {
                "type": "file-reference",
                "fileName": name,
                "startLine": start,
                "endLine": end,
                "content": content,
            }
        case SourcePart(url, title):
            return {"type": "source", "url": url, "title": title}
    raise TypeError(f"not a message part: {part!r}")


def from_json(raw: dict[str, Any]) -> Part:
    kind = raw.get("type")
    read = _READERS.get(kind) if isinstance(kind, str) else None
    if read is None:
        raise ValueError(f"unknown part type {kind!r}")
    return read(raw)


# One reader per stored ``type`` (a table: pages decode dozens of parts per request).
_READERS: dict[str, Callable[[dict[str, Any]], Part]] = {
    "text": lambda raw: TextPart(raw["text"]),
    "reasoning": lambda raw: ReasoningPart(raw["text"]),
    "tool-call": lambda raw: ToolCallPart(raw["toolCallId"], raw["toolName"], raw.get("args")),
    "tool-result": lambda raw: ToolResultPart(
        raw["toolCallId"], raw["toolName"], raw.get("result"), bool(raw.get("isError"))
    ),
    "file": lambda raw: FilePart(raw["fileId"]),
    "file-reference": lambda raw: FileReferencePart(
        raw["fileName"], raw.get("startLine"), raw.get("endLine"), raw.get("content")
    ),
    "source": lambda raw: SourcePart(raw["url"], raw.get("title")),
}


def parts_from_json(raw: list[dict[str, Any]]) -> list[Part]:
    readers = _READERS
    try:
        return [readers[item.get("type")](item) for item in raw]  # type: ignore[index]
    except (KeyError, TypeError):
        return [from_json(item) for item in raw]  # raises what ``from_json`` raises


def parts_to_json(parts: list[Part]) -> list[dict[str, Any]]:
    return [to_json(part) for part in parts]


def plain_text(parts: list[Part]) -> str:
    """The text parts joined, for titles and previews."""
    return " ".join(p.text for p in parts if isinstance(p, TextPart)).strip()
