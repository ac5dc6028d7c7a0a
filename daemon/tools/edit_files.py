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

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool, ToolError
from daemon.tools.paths import display_path, require_regular_file, resolve_writable
from daemon.tools.turn_context import ToolTurn
from daemon.tools.write_file import write_bytes

SPEC = ToolSpec(
    name="edit_files",
    description=(
        "Edit existing UTF-8 text files in the chat's workspace by exact search and replace. "
        "Each `search` must match the file's current text exactly (whitespace included) and "
        "exactly once, unless `replaceAll` is true. Edits to one file apply in order. If any "
        "edit fails, nothing is written. In plan mode only the chat's plan file may be edited."
    ),
    parameters={
        "type": "object",
        "properties": {
            "files": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {
                            "type": "string",
                            "description": "File path, relative to the workspace root or absolute.",
                        },
                        "edits": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "search": {"type": "string", "minLength": 1},
                                    "replace": {"type": "string"},
                                    "replaceAll": {
                                        "type": "boolean",
                                        "description": "Replace every match (default false).",
                                    },
                                },
                                "required": ["search", "replace"],
                                "additionalProperties": False,
                            },
                        },
                    },
                    "required": ["path", "edits"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["files"],
        "additionalProperties": False,
    },
)


@dataclass(frozen=True, slots=True)
class _Edit:
    search: str
    replace: str
    replace_all: bool


@dataclass(slots=True)
class _FileChange:
    real: Path
    shown: str
    original: bytes
    text: str
    replacements: int = 0


async def edit_files(args: dict[str, Any], turn: ToolTurn) -> dict[str, Any]:
    requests = _parse(args)
    changes: dict[Path, _FileChange] = {}
    counts: list[tuple[str, int]] = []
    for index, (raw, edits) in enumerate(requests):
        real = resolve_writable(turn, raw)
        change = changes.get(real)
        if change is None:
            change = await asyncio.to_thread(_load, real, display_path(turn, real))
            changes[real] = change
        before = change.replacements
        for number, edit in enumerate(edits):
            _apply(change, edit, f"files[{index}].edits[{number}] ({change.shown})")
        counts.append((change.shown, change.replacements - before))
    await asyncio.to_thread(_write_all, list(changes.values()))
    return {
        "files": [{"path": shown, "replacements": count} for shown, count in counts],
        "totalReplacements": sum(count for _, count in counts),
    }


def _parse(args: dict[str, Any]) -> list[tuple[str, list[_Edit]]]:
    files = args.get("files")
    if not isinstance(files, list) or not files:
        raise ToolError("argument 'files' must be a non-empty array of {path, edits}")
    parsed: list[tuple[str, list[_Edit]]] = []
    for index, entry in enumerate(files):
        where = f"files[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ToolError(f"{where} must be an object with a string 'path'")
        edits = entry.get("edits")
        if not isinstance(edits, list) or not edits:
            raise ToolError(f"{where}.edits must be a non-empty array of {{search, replace}}")
        parsed_edits = [_parse_edit(edit, f"{where}.edits[{n}]") for n, edit in enumerate(edits)]
        parsed.append((entry["path"], parsed_edits))
    return parsed


def _parse_edit(edit: Any, where: str) -> _Edit:
    if not isinstance(edit, dict):
        raise ToolError(f"{where} must be an object with 'search' and 'replace'")
    search, replace = edit.get("search"), edit.get("replace")
    if not isinstance(search, str) or not search:
        raise ToolError(f"{where}.search must be a non-empty string")
    if not isinstance(replace, str):
        raise ToolError(f"{where}.replace must be a string")
    replace_all = edit.get("replaceAll", False)
    if not isinstance(replace_all, bool):
        raise ToolError(f"{where}.replaceAll must be true or false")
    return _Edit(search=search, replace=replace, replace_all=replace_all)


def _load(real: Path, shown: str) -> _FileChange:
    require_regular_file(real, shown)
    original = real.read_bytes()
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{shown} is not UTF-8 text; edit_files only edits text files") from exc
    return _FileChange(real=real, shown=shown, original=original, text=text)


def _apply(change: _FileChange, edit: _Edit, where: str) -> None:
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


TOOL = Tool(spec=SPEC, run=edit_files, timeout_s=60.0)
