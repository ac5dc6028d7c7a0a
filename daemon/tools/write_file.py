"""The ``write_file`` tool: create or replace a workspace file with given text.

The file is opened at its resolved real path through ``open_resolved``, so a link
planted in that path after the confinement check is refused instead of followed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from pydantic import Field

from daemon.tool_registry import Tool, ToolArgs, ToolError
from daemon.tools.paths import display_path, open_resolved, resolve_writable
from daemon.tools.turn_context import ToolTurn, WorkspacePath

# The most text one call may write: far above what a model writes in one reply.
CONTENT_MAX = 1_000_000

DESCRIPTION = (
    "Create or overwrite a text file in the chat's workspace with `content` (UTF-8). "
    "Missing parent directories are created. To change part of an existing file, "
    "prefer edit_files. In plan mode only the chat's plan file may be written."
)


class WriteFileArgs(ToolArgs):
    path: WorkspacePath
    content: str = Field(max_length=CONTENT_MAX, description="The file's complete new content.")


async def write_file(args: WriteFileArgs, turn: ToolTurn) -> dict[str, Any]:
    real = resolve_writable(turn, args.path)
    shown = display_path(turn, real)
    data = args.content.encode("utf-8")
    created = await asyncio.to_thread(write_bytes, real, shown, data)
    return {"path": shown, "bytesWritten": len(data), "created": created}


def write_bytes(real: Path, shown: str, data: bytes) -> bool:
    """Writes ``data`` to the confined path ``real``; returns whether it was created."""
    if real.is_dir():
        raise ToolError(f"{shown} is a directory; give a file path")
    existed = real.exists()
    if existed and not real.is_file():
        raise ToolError(f"{shown} is not a regular file")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = open_resolved(real, shown, flags, make_parents=True)  # through no planted link
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return not existed


TOOL = Tool.declare("write_file", DESCRIPTION, WriteFileArgs, write_file, timeout_s=60.0)
