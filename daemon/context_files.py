"""Workspace context files: the instructions a repository keeps for coding agents.

At turn start the daemon looks for these names, in this order, in the
workspace root and then in each repository root the git watcher knows (the
roots of the workspace's latest git snapshot, in their stored order; none when
no watcher has scanned the workspace):

    AGENTS.md, CLAUDE.md, .cursorrules, .github/copilot-instructions.md

Each file found is included in the system prompt inside one delimited section,
named by its path as the model sees it (under ``WORKSPACE_MOUNT``)::

    <workspace-context-files>
    Instructions from files in the workspace ...
    <context-file path="/workspace/AGENTS.md">
    ...the file's text...
    </context-file>
    </workspace-context-files>

Caps: at most ``FILE_MAX_BYTES`` (64 KiB) of each file and ``TOTAL_MAX_BYTES``
(128 KiB) over all of them; a file cut short says so (``truncated="true"``,
with its size), files after the total is spent are left out (and listed as
such in ``ContextFiles``).

The workspace is written by the agent's commands, so it is read as if hostile:
a name that is a link is followed only when its target lies inside the
workspace (a link to the host is not read), the file is then opened through no
link at all (``open_resolved``: a link swapped in meanwhile is refused), only
regular files are read (no FIFOs or devices), and text that is not UTF-8 is
replaced (U+FFFD), as are NULs. A file reached twice (``CLAUDE.md`` linking to
``AGENTS.md``) is included once.

For debug logging: ``read_context_files`` returns ``ContextFiles`` — the
section's ``text`` plus one ``ContextFile`` per file (``path``, ``size`` on
disk, ``included`` bytes); ``ContextFiles.to_json()`` is its record form.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tortoise import Tortoise

from daemon.tool_registry import ToolError
from daemon.tools.paths import open_resolved
from db.git_snapshots import host_path, is_sandbox_root
from db.text_rules import storable_text
from db.vocabulary import WORKSPACE_MOUNT

log = logging.getLogger(__name__)

CONTEXT_FILE_NAMES = ("AGENTS.md", "CLAUDE.md", ".cursorrules", ".github/copilot-instructions.md")
FILE_MAX_BYTES = 64 * 1024
TOTAL_MAX_BYTES = 128 * 1024
# Bounds the files opened for a workspace holding very many repositories.
MAX_ROOTS = 64

SECTION_OPEN = "<workspace-context-files>"
SECTION_CLOSE = "</workspace-context-files>"
SECTION_INTRO = (
    "Instructions from files in the workspace, for working in the directory each file lies in:"
)

_ROOTS = """
SELECT repo->>'root' AS root FROM workspace_git_snapshots,
  jsonb_array_elements(CASE WHEN jsonb_typeof(repositories) = 'array'
                            THEN repositories ELSE '[]'::jsonb END) WITH ORDINALITY AS r(repo, n)
WHERE workspace_id = $1 AND jsonb_typeof(repo) = 'object'
  AND coalesce(repo->>'removed', 'false') <> 'true'
ORDER BY n
"""


@dataclass(frozen=True)
class ContextFile:
    path: str  # as the model sees it: /workspace/app/AGENTS.md
    size: int  # bytes on disk
    included: int  # bytes of it in the prompt (0: left out, the total was spent)

    @property
    def truncated(self) -> bool:
        return self.included < self.size


@dataclass(frozen=True)
class ContextFiles:
    """What a turn's prompt took from the workspace."""

    files: tuple[ContextFile, ...] = ()
    text: str = ""  # the delimited section; empty when no file was included

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"path": f.path, "size": f.size, "includedBytes": f.included, "truncated": f.truncated}
            for f in self.files
        ]


@dataclass
class _Found:
    shown: str
    size: int
    data: bytes


@dataclass
class _Reader:
    root: Path  # the workspace's real directory
    budget: int = TOTAL_MAX_BYTES
    seen: set[Path] = field(default_factory=set)
    found: list[_Found] = field(default_factory=list)

    def read_dir(self, directory: Path) -> None:
        for name in CONTEXT_FILE_NAMES:
            self.read_one(directory / name)

    def read_one(self, candidate: Path) -> None:
        real = Path(os.path.realpath(candidate))
        if not real.is_relative_to(self.root) or real in self.seen:
            return
        try:
            shown = f"{WORKSPACE_MOUNT}/{candidate.relative_to(self.root).as_posix()}"
        except ValueError:
            return  # a repository root outside the workspace (never stored, but be sure)
        if not os.path.lexists(candidate):
            return
        self.seen.add(real)
        try:
            fd = open_resolved(real, shown, os.O_RDONLY)
        except (ToolError, OSError) as exc:
            log.info("context file %s not read: %s", shown, exc)
            return
        with os.fdopen(fd, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(min(FILE_MAX_BYTES, self.budget))
        self.budget -= len(data)
        self.found.append(_Found(shown, max(size, len(data)), data))


def _decode(data: bytes, whole: bool) -> str:
    """UTF-8 with invalid bytes replaced; a cut-off last character is dropped."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return storable_text(decoder.decode(data, final=whole))


def _section(found: list[_Found]) -> str:
    blocks = []
    for item in found:
        if not item.data:
            continue
        whole = len(item.data) >= item.size
        text = _decode(item.data, whole).strip("\n")
        attrs = f'path="{item.shown}"'
        if not whole:
            attrs += f' truncated="true" size="{item.size}"'
            text += f"\n[truncated: the first {len(item.data)} of {item.size} bytes]"
        blocks.append(f"<context-file {attrs}>\n{text}\n</context-file>")
    if not blocks:
        return ""
    return "\n".join([SECTION_OPEN, SECTION_INTRO, *blocks, SECTION_CLOSE])


def read_from(workspace_dir: Path, roots: list[str]) -> ContextFiles:
    """The context files of ``workspace_dir`` and of the in-sandbox ``roots``
    (``/workspace/app``), blocking: call it off the event loop."""
    root = Path(os.path.realpath(workspace_dir))
    if not root.is_dir():
        return ContextFiles()
    reader = _Reader(root)
    reader.read_dir(root)
    for stored in roots[:MAX_ROOTS]:
        if is_sandbox_root(stored) and stored != WORKSPACE_MOUNT:
            reader.read_dir(host_path(root, stored))
    files = tuple(ContextFile(f.shown, f.size, len(f.data)) for f in reader.found)
    return ContextFiles(files, _section(reader.found))


async def repository_roots(workspace_id: uuid.UUID) -> list[str]:
    """The roots of the workspace's latest git snapshot (not the diffs: the
    database picks the roots out)."""
    client = Tortoise.get_connection("default")
    rows = await client.execute_query_dict(_ROOTS, [workspace_id])
    return [str(row["root"]) for row in rows if row["root"]]


async def read_context_files(
    workspace_dir: Path | None, workspace_id: uuid.UUID | None
) -> ContextFiles:
    """What a turn starting now includes; nothing without a workspace. A failure
    is logged and leaves the files out: a turn never fails over them."""
    if workspace_dir is None:
        return ContextFiles()
    try:
        roots = [] if workspace_id is None else await repository_roots(workspace_id)
        return await asyncio.to_thread(read_from, workspace_dir, roots)
    except Exception:
        log.warning("reading the workspace's context files failed", exc_info=True)
        return ContextFiles()
