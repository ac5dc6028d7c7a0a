"""The files a unified diff touches, with per-file line counts.

Shared by the API (a repository's changed-file list) and the daemon (totals
stored with each snapshot), so both read a diff the same way. The diffs come
from working trees that change under our feet and may be cut short by the size
cap, so parsing never raises: each file is parsed on its own, and a file the
parser rejects is read from its headers and +/- lines instead.

Status vocabulary:

- ``"added"``: the file is new (``--- /dev/null`` / ``new file mode``).
- ``"deleted"``: the file is gone (``+++ /dev/null`` / ``deleted file mode``).
- ``"renamed"``: the path changed (content may have changed too; ``old_path``
  holds the previous path).
- ``"modified"``: anything else, including mode-only and binary changes.

Binary files carry 0 additions and 0 deletions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from unidiff.patch import PatchedFile, PatchSet

ADDED = "added"
DELETED = "deleted"
MODIFIED = "modified"
RENAMED = "renamed"

_DEV_NULL = "/dev/null"
_FILE_START = re.compile(r"^diff --git ", re.MULTILINE)
_PREFIX = re.compile(r"^[abciow12]/")
_GIT_HEADER = re.compile(r'^diff --git ("?[^\t\n]+?"?) ("?b/[^\t\n]+"?)$')
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True)
class DiffFile:
    path: str
    old_path: str | None
    status: str
    additions: int
    deletions: int


def diff_files(unified_diff: str) -> list[DiffFile]:
    """Every file in the diff, in order; [] for an empty or unreadable diff."""
    files: list[DiffFile] = []
    for chunk in _file_chunks(unified_diff):
        try:
            patch = PatchSet(chunk, metadata_only=True)
        except Exception:  # one malformed file must not hide the others
            fallback = _read_headers(chunk)
            if fallback is not None:
                files.append(fallback)
            continue
        files.extend(_from_patched(patched) for patched in patch)
    return files


def diff_totals(files: Iterable[DiffFile]) -> tuple[int, int, int]:
    """(additions, deletions, changed files) over ``files``."""
    additions = deletions = count = 0
    for file in files:
        additions += file.additions
        deletions += file.deletions
        count += 1
    return additions, deletions, count


def _file_chunks(text: str) -> list[str]:
    """Split at each ``diff --git`` header so one bad file cannot spoil the rest."""
    if not text.strip():
        return []
    starts = [match.start() for match in _FILE_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(text))
    chunks = [text[begin:end] for begin, end in pairwise(starts)]
    return [chunk for chunk in chunks if chunk.strip()]


def _from_patched(patched: PatchedFile) -> DiffFile:
    source = patched.source_file or _DEV_NULL
    target = patched.target_file or _DEV_NULL
    info = list(patched.patch_info or [])
    rename_from = _info_value(info, "rename from ")
    rename_to = _info_value(info, "rename to ")
    if source == _DEV_NULL:
        status, path, old_path = ADDED, _clean(target), None
    elif target == _DEV_NULL:
        status, path, old_path = DELETED, _clean(source), None
    elif rename_from is not None or _clean(source) != _clean(target):
        old = rename_from if rename_from is not None else _clean(source)
        new = rename_to if rename_to is not None else _clean(target)
        status, path, old_path = RENAMED, new, old
    else:
        status, path, old_path = MODIFIED, _clean(target), None
    if patched.is_binary_file:
        return DiffFile(path, old_path, status, 0, 0)
    return DiffFile(path, old_path, status, patched.added, patched.removed)


def _read_headers(chunk: str) -> DiffFile | None:
    """Best effort for a file the parser rejected, e.g. one cut off mid-hunk."""
    source: str | None = None
    target: str | None = None
    rename_from: str | None = None
    rename_to: str | None = None
    status = MODIFIED
    binary = False
    additions = deletions = 0
    in_hunks = False
    for line in chunk.split("\n"):
        if in_hunks:
            if line.startswith("+"):
                additions += 1
            elif line.startswith("-"):
                deletions += 1
            elif not line.startswith((" ", "\\", "@@")) and line:
                break
            continue
        header = _GIT_HEADER.match(line)
        if header:
            source, target = header.group(1), header.group(2)
        elif line.startswith("new file mode"):
            status = ADDED
        elif line.startswith("deleted file mode"):
            status = DELETED
        elif line.startswith("rename from "):
            rename_from = _unquote(line[len("rename from ") :])
        elif line.startswith("rename to "):
            rename_to = _unquote(line[len("rename to ") :])
        elif line.startswith("--- "):
            source = line[4:].split("\t")[0]
        elif line.startswith("+++ "):
            target = line[4:].split("\t")[0]
        elif line.startswith("Binary files "):
            binary = True
        elif line.startswith("@@"):
            in_hunks = True
    if source is None or target is None:
        return None
    old_path = None
    if source == _DEV_NULL or status == ADDED:
        status, path = ADDED, _clean(target)
    elif target == _DEV_NULL or status == DELETED:
        status, path = DELETED, _clean(source)
    elif rename_from is not None:
        status, old_path = RENAMED, rename_from
        path = rename_to or _clean(target)
    else:
        path = _clean(target)
    if binary:
        additions = deletions = 0
    return DiffFile(path, old_path, status, additions, deletions)


def _info_value(info: list[str], prefix: str) -> str | None:
    for line in info:
        if line.startswith(prefix):
            return _unquote(line[len(prefix) :].rstrip("\n"))
    return None


def _clean(name: str) -> str:
    """A header file name as a repository path: unquoted, without a/ b/."""
    return _PREFIX.sub("", _unquote(name.rstrip("\n")), count=1)


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual paths ("a\\tb", octal bytes)."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body = name[1:-1]
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 >= len(body):
            out += char.encode()
            index += 1
            continue
        escape = body[index + 1]
        octal = body[index + 1 : index + 4]
        if len(octal) == 3 and all(c in "01234567" for c in octal):
            out.append(int(octal, 8) & 0xFF)
            index += 4
        else:
            out += bytes([_ESCAPES[escape]]) if escape in _ESCAPES else escape.encode()
            index += 2
    return out.decode("utf-8", errors="replace")
