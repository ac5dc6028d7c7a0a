"""The ``edit_files`` tool: exact search-and-replace edits across several files.

A call is all or nothing: every edit is applied in memory first, and files are
written only when all of them matched, so a stale search string never leaves
the workspace half edited. If a write itself fails, files already written are
put back.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from daemon.tool_registry import Tool, ToolArgs, ToolError
from daemon.tools.paths import display_path, read_resolved, require_regular_file, resolve_writable
from daemon.tools.turn_context import ToolTurn, WorkspacePath
from daemon.tools.write_file import CONTENT_MAX, write_bytes

# Bounds on one call: generous for real refactors, small enough to check quickly.
FILES_MAX = 100
EDITS_MAX = 200

DESCRIPTION = (
    "Edit existing UTF-8 text files in the chat's workspace by exact search and replace. "
    "Each `search` must match the file's current text exactly (whitespace included) and "
    "exactly once, unless `replaceAll` is true. Edits to one file apply in order. If any "
    "edit fails, nothing is written. In plan mode only the chat's plan file may be edited."
)


class Edit(ToolArgs):
    search: str = Field(min_length=1, max_length=CONTENT_MAX)
    replace: str = Field(max_length=CONTENT_MAX)
    replace_all: bool = Field(False, alias="replaceAll", description="Replace every match.")


class FileEdits(ToolArgs):
    path: WorkspacePath
    edits: list[Edit] = Field(min_length=1, max_length=EDITS_MAX)


class EditFilesArgs(ToolArgs):
    files: list[FileEdits] = Field(min_length=1, max_length=FILES_MAX)


@dataclass(slots=True)
class _FileChange:
    real: Path
    shown: str
    original: bytes
    text: str
    replacements: int = 0


async def edit_files(args: EditFilesArgs, turn: ToolTurn) -> dict[str, Any]:
    changes: dict[Path, _FileChange] = {}
    counts: list[tuple[str, int]] = []
    for index, request in enumerate(args.files):
        real = resolve_writable(turn, request.path)
        change = changes.get(real)
        if change is None:
            change = await asyncio.to_thread(_load, real, display_path(turn, real))
            changes[real] = change
        before = change.replacements
        for number, edit in enumerate(request.edits):
            _apply(change, edit, f"files[{index}].edits[{number}] ({change.shown})")
        counts.append((change.shown, change.replacements - before))
    await asyncio.to_thread(_write_all, list(changes.values()))
    return {
        "files": [{"path": shown, "replacements": count} for shown, count in counts],
        "totalReplacements": sum(count for _, count in counts),
    }


def _load(real: Path, shown: str) -> _FileChange:
    require_regular_file(real, shown)
    original = read_resolved(real, shown)
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{shown} is not UTF-8 text; edit_files only edits text files") from exc
    return _FileChange(real=real, shown=shown, original=original, text=text)


def _apply(change: _FileChange, edit: Edit, where: str) -> None:
    found = change.text.count(edit.search)
    if found == 0:
        raise ToolError(
            f"{where}: search text not found; nothing was written. Read the file again and "
            "copy the text to replace exactly"
        )
    if found > 1 and not edit.replace_all:
        raise ToolError(
            f"{where}: search text matches {found} times; nothing was written. Include more "
            "surrounding text to make it unique, or set replaceAll"
        )
    change.text = change.text.replace(edit.search, edit.replace)
    change.replacements += found


def _write_all(changes: list[_FileChange]) -> None:
    attempted: list[_FileChange] = []
    try:
        for change in changes:
            attempted.append(change)
            write_bytes(change.real, change.shown, change.text.encode("utf-8"))
    except BaseException:
        for change in attempted:
            with contextlib.suppress(OSError):
                write_bytes(change.real, change.shown, change.original)
        raise


TOOL = Tool.declare("edit_files", DESCRIPTION, EditFilesArgs, edit_files, timeout_s=60.0)
