"""The ``read_file`` tool: a window of a workspace text file, by line.

Files are scanned line by line in a worker thread and at most ``MAX_TEXT_BYTES``
are returned, so a huge log or a minified one-line bundle can neither flood the
model's context nor stall the event loop.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import Field

from daemon.tool_registry import Tool, ToolArgs, ToolError, WholeNumber
from daemon.tools.paths import display_path, open_resolved, require_regular_file, resolve_path
from daemon.tools.turn_context import ToolTurn, WorkspacePath

MAX_TEXT_BYTES = 256 * 1024
DEFAULT_LIMIT = 2000
_SNIFF_BYTES = 8192
_PIECE_BYTES = 64 * 1024

DESCRIPTION = (
    "Read a UTF-8 text file in the chat's workspace. Returns `content` (the exact text "
    "of lines startLine..endLine, without line numbers), `totalLines`, and `truncated`, "
    f"which is true when the {MAX_TEXT_BYTES // 1024} KiB output cap cut the requested "
    "range short; read on from endLine + 1. Binary files are refused."
)


class ReadFileArgs(ToolArgs):
    path: WorkspacePath
    offset: WholeNumber = Field(1, ge=1, description="First line to read, 1-based.")
    limit: WholeNumber = Field(DEFAULT_LIMIT, ge=1, description="Maximum number of lines to read.")


@dataclass(frozen=True, slots=True)
class _Window:
    text: str
    end_line: int
    total_lines: int
    truncated: bool


async def read_file(args: ReadFileArgs, turn: ToolTurn) -> dict[str, Any]:
    offset, limit = args.offset, args.limit
    real = resolve_path(turn, args.path)
    shown = display_path(turn, real)
    require_regular_file(real, shown)
    window = await asyncio.to_thread(_read_window, real, shown, offset, limit)
    if offset > max(window.total_lines, 1):
        raise ToolError(
            f"offset {offset} is past the end of {shown}, which has {window.total_lines} lines"
        )
    return {
        "path": shown,
        "content": window.text,
        "startLine": offset,
        "endLine": window.end_line,
        "totalLines": window.total_lines,
        "truncated": window.truncated,
    }


def _read_window(real: Path, shown: str, offset: int, limit: int) -> _Window:
    last = offset + limit - 1
    taken: list[bytes] = []
    budget = MAX_TEXT_BYTES
    end_line = offset - 1
    total = 0
    truncated = False
    with os.fdopen(open_resolved(real, shown, os.O_RDONLY), "rb") as file:
        _refuse_binary(file.read(_SNIFF_BYTES), shown)
        file.seek(0)
        for number, (line, cut) in enumerate(_capped_lines(file, MAX_TEXT_BYTES), start=1):
            total = number
            if number < offset or number > last or truncated:
                continue
            if cut or len(line) > budget:
                truncated = True
                if number != offset:
                    continue
                line = line[:budget]  # a single over-long line: show its start
            taken.append(line)
            budget -= len(line)
            end_line = number
    text = b"".join(taken).decode("utf-8", errors="replace")
    return _Window(text=text, end_line=end_line, total_lines=total, truncated=truncated)


def _capped_lines(file: IO[bytes], max_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """Each line's first ``max_bytes`` bytes, and whether the rest was dropped.

    Reading in pieces keeps memory bounded even for a gigabyte on one line.
    """
    kept = bytearray()
    cut = False
    while piece := file.readline(_PIECE_BYTES):
        room = max_bytes - len(kept)
        if len(piece) > room:
            cut = True
        kept += piece[:room]
        if piece.endswith(b"\n"):
            yield bytes(kept), cut
            kept.clear()
            cut = False
    if kept or cut:
        yield bytes(kept), cut


def _refuse_binary(head: bytes, shown: str) -> None:
    """NUL bytes mark binary content, the same test git uses."""
    if b"\0" not in head:
        return
    kind, _ = mimetypes.guess_type(shown)
    described = f"a binary file ({kind})" if kind else "a binary file"
    raise ToolError(f"{shown} is {described}; read_file only reads text files")


TOOL = Tool.declare("read_file", DESCRIPTION, ReadFileArgs, read_file, timeout_s=60.0)
