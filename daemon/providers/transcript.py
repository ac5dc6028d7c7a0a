"""Text crossing the provider boundary: parts out as text, tool arguments back in.

Both APIs take text, tool calls and tool results natively. File references,
attachments and sources become text here, and reasoning is never sent back:
neither API accepts it without provider signatures the parts do not keep.
Tool arguments arrive as streamed JSON text and are parsed here once.
"""

from __future__ import annotations

import json
from typing import Any

from daemon.providers.errors import ProviderError
from db.parts import (
    FilePart,
    FileReferencePart,
    Part,
    SourcePart,
    TextPart,
    ToolResultPart,
)
from db.vocabulary import ChatErrorKind


def part_text(part: Part) -> str | None:
    """The text a user or assistant part contributes, or None when it adds none."""
    match part:
        case TextPart(text):
            return text or None
        case FileReferencePart(name, start, end, content):
            return _file_reference(name, start, end, content)
        case FilePart(file_id):
            # Bytes are not part of the message; the daemon inlines images itself.
            return f"[attached file {file_id}]"
        case SourcePart(url, title):
            return f"[{title}]({url})" if title else url
    return None


def joined_text(parts: list[Part]) -> str:
    """All text of a message's parts, separated by blank lines."""
    return "\n\n".join(t for t in (part_text(p) for p in parts) if t)


def value_text(value: Any) -> str:
    """A tool result or argument as text: strings as-is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def result_text(part: ToolResultPart) -> str:
    """A tool result as the model sees it; errors say so in the text too."""
    text = value_text(part.result)
    return f"Error: {text}" if part.is_error else text


def parse_tool_args(raw: str, *, provider: str, tool_name: str) -> dict[str, Any]:
    """The JSON object a model streamed as a tool call's arguments.

    Malformed arguments fail the attempt as retryable: executing a tool on a
    guess is worse than asking the model again.
    """
    if not raw.strip():
        return {}
    try:
        args = json.loads(raw)
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise ProviderError(
            ChatErrorKind.GENERIC,
            provider=provider,
            message=f"The model sent malformed arguments for tool {tool_name!r}.",
            retryable=True,
            detail=raw[:500],
        )
    return args


def _file_reference(name: str, start: int | None, end: int | None, content: str | None) -> str:
    where = name
    if start is not None:
        where += f":{start}" if end is None or end == start else f":{start}-{end}"
    if not content:
        return f"[file {where}]"
    return f"[file {where}]\n```\n{content}\n```"
