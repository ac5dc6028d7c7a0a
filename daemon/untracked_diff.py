"""New-file diff entries for a repository's untracked files, read on the host.

Git lists the untracked files (inside the sandbox); this module reads them
and prints the entries ``git diff`` would print had they been added. The list
comes from a workspace an agent controls, and the agent can swap a directory
for a symlink between the listing and the read, so every path is opened one
component at a time from the workspace directory without following symlinks:
a file outside the workspace is never read, whatever the list names. A
symlink's entry is its target text, as git shows it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

# Git's own heuristic: a NUL byte in the first 8000 bytes makes a file binary.
BINARY_SNIFF = 8000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a file swapped for a FIFO after the lstat must not block the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class AddedFiles:
    text: bytes
    omitted: int
    lines: int
    files: int


def untracked_diff(
    workspace_fd: int, root: Sequence[str], paths: list[str], budget: int
) -> AddedFiles:
    """New-file diffs for ``paths`` (relative to the repository at ``root``, the
    path components below the workspace) while they fit in ``budget`` bytes;
    line counts cover every file. Blocking; run in a thread."""
    parts: list[bytes] = []
    used = omitted = lines = files = 0
    for path in sorted(paths):
        components = [*root, *path.split("/")]
        if any(part in ("", ".", "..") for part in components):
            continue  # git never lists such a path; a forged list might
        try:
            with _opened_dir(workspace_fd, components[:-1]) as directory:
                read = _read(directory, components[-1], used, budget, omitted > 0)
        except OSError:
            continue  # deleted, unreadable, or a symlink along the way since git listed it
        if read is None:
            continue
        mode, content, count, size = read
        files += 1
        lines += count
        entry = new_file_entry(path, mode, content) if content is not None else b""
        if content is not None and not omitted and used + len(entry) <= budget:
            parts.append(entry)
            used += len(entry)
        else:
            omitted += len(entry) if entry else _entry_estimate(path, count, size)
    return AddedFiles(b"".join(parts), omitted, lines, files)


@contextlib.contextmanager
def _opened_dir(workspace_fd: int, components: Sequence[str]) -> Iterator[int]:
    """A descriptor of the directory ``components`` below the workspace, reached
    without following any symlink."""
    current = workspace_fd
    try:
        for name in components:
            following = os.open(name, _DIR_FLAGS, dir_fd=current)
            if current != workspace_fd:
                os.close(current)
            current = following
        yield current
    finally:
        if current != workspace_fd:
            os.close(current)


def _read(
    directory: int, name: str, used: int, budget: int, omitting: bool
) -> tuple[str, bytes | None, int, int] | None:
    """(mode, content or None when over budget, lines, size) of one entry;
    None for anything but a regular file or a symlink."""
    info = os.stat(name, dir_fd=directory, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        target = os.fsencode(os.readlink(name, dir_fd=directory))
        count, size = _lines_in(target)
        return "120000", target, count, size
    if not stat.S_ISREG(info.st_mode):
        return None
    fd = os.open(name, _FILE_FLAGS, dir_fd=directory)
    with open(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            return None
        mode = "100755" if opened.st_mode & stat.S_IXUSR else "100644"
        if used + opened.st_size <= budget and not omitting:
            content = handle.read()
            count, size = _lines_in(content)
            return mode, content, count, size
        count, size = _count_lines(handle)
        return mode, None, count, size


def _entry_estimate(path: str, lines: int, size: int) -> int:
    """Roughly what a skipped file's entry would have taken: headers, plus one
    "+" per line for text (a non-empty file with no lines is binary)."""
    header = 3 * len(os.fsencode(path)) + 100
    return header + (size + lines if lines else 0)


def _lines_in(content: bytes) -> tuple[int, int]:
    """(lines as git counts them, byte size); a binary file has no lines."""
    if b"\0" in content[:BINARY_SNIFF]:
        return 0, len(content)
    count = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    return count, len(content)


def _count_lines(handle: BinaryIO) -> tuple[int, int]:
    """Like ``_lines_in`` for a file too large to hold in memory."""
    count = size = 0
    last = b""
    while block := handle.read(1024 * 1024):
        if size == 0 and b"\0" in block[:BINARY_SNIFF]:
            return 0, os.fstat(handle.fileno()).st_size
        count += block.count(b"\n")
        size += len(block)
        last = block[-1:]
    return count + (1 if last and last != b"\n" else 0), size


def new_file_entry(path: str, mode: str, content: bytes) -> bytes:
    """The entry ``git diff`` would print had the file been added."""
    old, new = _quote("a/" + path), _quote("b/" + path)
    head = _raw(f"diff --git {old} {new}\nnew file mode {mode}\n")
    if not content:
        return head
    if b"\0" in content[:BINARY_SNIFF]:
        return head + _raw(f"Binary files /dev/null and {new} differ\n")
    body = content[:-1] if content.endswith(b"\n") else content
    rows = body.split(b"\n")
    span = "1" if len(rows) == 1 else f"1,{len(rows)}"
    hunk = b"".join(b"+" + row + b"\n" for row in rows)
    if not content.endswith(b"\n"):
        hunk += b"\\ No newline at end of file\n"
    return head + _raw(f"--- /dev/null\n+++ {new}\n@@ -0,0 +{span} @@\n") + hunk


def _raw(text: str) -> bytes:
    """Back to bytes, restoring file-name bytes that are not valid UTF-8."""
    return text.encode(errors="surrogateescape")


def _quote(name: str) -> str:
    """Git's C-style quoting, applied (with core.quotepath off) only to names
    holding quotes, backslashes or control characters."""
    if not any(char in '"\\' or ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        return name
    escapes = {"\t": "\\t", "\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
    quoted = "".join(
        escapes.get(char, f"\\{ord(char):03o}" if ord(char) < 0x20 or ord(char) == 0x7F else char)
        for char in name
    )
    return f'"{quoted}"'
