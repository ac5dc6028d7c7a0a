"""A workspace's git repositories and what each has changed since its last commit.

A chat's workspace holds one or more repositories; the UI shows, per
repository, the working tree against HEAD including untracked files, as one
unified diff. The diff is capped so a generated or vendored tree cannot flood
the database, while the line and file counts still cover the whole change set.

Git runs as asyncio subprocesses so a slow repository never blocks the loop.
Workspaces are written by agents, so git is told not to prompt, not to run
external diff, textconv or filter commands, not to look for a repository above
the directory it scans, and not to take optional index locks (which would also
wake the watcher with our own writes). Roots leave here as the in-sandbox
paths clients see (``/workspace/app``), never the host directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from db.git_snapshots import RepoSnapshot, sandbox_root

log = logging.getLogger(__name__)

MAX_DIFF_BYTES = 3 * 1024 * 1024
# The tree with no entries: what an unborn branch's working tree is compared to.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Directories never searched for repositories.
SKIP_DIRS = frozenset({".git", "node_modules", ".venv"})
# Bounds the walk of a wide workspace; a repository deeper or later is not shown.
MAX_DIRS_WALKED = 5000
SCAN_CONCURRENCY = 4

_GIT = ("git", "-c", "core.quotepath=off", "-c", "core.fsmonitor=false")
_DIFF = (
    "diff",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "-M",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
_INHERITED_GIT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")
_READ_BLOCK = 64 * 1024
# Git's own heuristic: a NUL byte in the first 8000 bytes makes a file binary.
_BINARY_SNIFF = 8000


class GitError(RuntimeError):
    """A git command failed; the repository is skipped for this scan."""


async def scan_workspace(workspace: Path, max_depth: int = 3) -> list[RepoSnapshot]:
    """Every readable repository in the workspace, sorted by root; a repository
    that fails to scan is logged and left out rather than failing the rest.

    Roots are in-sandbox paths (``/workspace/app``): what clients see. A
    repository whose working tree or git directory lies outside the workspace
    (a ``.git`` file or ``core.worktree`` pointing elsewhere) is left out: it is
    not the workspace's, and its files are the host's."""
    roots = await asyncio.to_thread(find_repos, workspace, max_depth)
    limit = asyncio.Semaphore(SCAN_CONCURRENCY)

    async def scan(root: Path) -> RepoSnapshot | None:
        async with limit:
            try:
                snapshot = await scan_repo(root, within=workspace)
                return replace(snapshot, root=sandbox_root(workspace, snapshot.root))
            except Exception:
                log.warning("scanning the git repository at %s failed", root, exc_info=True)
                return None

    snapshots = await asyncio.gather(*(scan(root) for root in roots))
    unique = {snapshot.root: snapshot for snapshot in snapshots if snapshot is not None}
    return [unique[root] for root in sorted(unique)]


def find_repos(workspace: Path, max_depth: int = 3) -> list[Path]:
    """Directories at most ``max_depth`` below the workspace holding a ``.git``
    entry (a directory, or a file for worktrees and submodules)."""
    found: list[Path] = []
    queue: deque[tuple[Path, int]] = deque([(workspace, 0)])
    walked = 0
    while queue:
        if walked >= MAX_DIRS_WALKED:
            log.warning("stopped looking for repositories in %s after %d dirs", workspace, walked)
            break
        directory, depth = queue.popleft()
        walked += 1
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        if any(entry.name == ".git" for entry in entries):
            found.append(directory)
        if depth >= max_depth:
            continue
        for entry in entries:
            if entry.name in SKIP_DIRS:
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    queue.append((Path(entry.path), depth + 1))
    return sorted(found)


async def scan_repo(root: Path, *, within: Path | None = None) -> RepoSnapshot:
    """The repository's branch, origin and working-tree diff against HEAD; with
    ``within``, GitError unless its work tree and git dirs all lie inside it."""
    located = await _git_text(
        root,
        "rev-parse",
        "--path-format=absolute",
        "--show-toplevel",
        "--absolute-git-dir",
        "--git-common-dir",
    )
    paths = located.splitlines()
    top = Path(paths[0])
    if within is not None:
        for path in paths:
            try:
                sandbox_root(within, path)
            except ValueError:
                raise GitError(f"{path} lies outside the workspace {within}") from None
    head, branch, origin = await asyncio.gather(
        _git_optional(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        _git_optional(top, "symbolic-ref", "--quiet", "--short", "HEAD"),
        _git_optional(top, "config", "--get", "remote.origin.url"),
    )
    base = "HEAD" if head else EMPTY_TREE
    no_filters = await _disabled_filters(top)
    tracked, numstat, others = await asyncio.gather(
        _git(top, *_DIFF, base, "--", limit=MAX_DIFF_BYTES, config=no_filters),
        _git(top, *_DIFF, "--numstat", "-z", base, "--", config=no_filters),
        _git(top, "ls-files", "-z", "--others", "--exclude-standard"),
    )
    diff, omitted = tracked.output, tracked.total - len(tracked.output)
    if omitted:
        cut = _file_boundary(diff, MAX_DIFF_BYTES)
        diff, omitted = diff[:cut], tracked.total - cut
    additions, deletions, changed = _numstat_totals(numstat.output)
    # Nested repositories show up as "dir/"; they are scanned on their own.
    paths = [os.fsdecode(p) for p in others.output.split(b"\0") if p and not p.endswith(b"/")]
    budget = 0 if omitted else MAX_DIFF_BYTES - len(diff)
    added = await asyncio.to_thread(_untracked_diff, top, paths, budget)
    diff += added.text
    omitted += added.omitted
    if omitted:
        diff += f"# diff too large: {omitted} bytes omitted\n".encode()
    return RepoSnapshot(
        root=str(top),
        branch=branch or None,
        remote_origin=origin or None,
        unified_diff=diff.decode("utf-8", errors="replace"),
        removed=False,
        additions=additions + added.lines,
        deletions=deletions,
        changed_files=changed + added.files,
    )


@dataclass(frozen=True)
class _GitOutput:
    code: int
    output: bytes
    total: int
    stderr: bytes


@dataclass(frozen=True)
class _AddedFiles:
    text: bytes
    omitted: int
    lines: int
    files: int


def _env(repo: Path, config: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _INHERITED_GIT_VARS and not k.startswith("GIT_CONFIG_")
    }
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    # A directory whose .git is not a repository must not lead git to a parent
    # one: above a workspace lie the server's own directories.
    env["GIT_CEILING_DIRECTORIES"] = os.path.dirname(os.path.realpath(repo))
    # Command-line configuration, which outranks the repository's own; passed
    # through the environment so no key needs quoting.
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


async def _disabled_filters(top: Path) -> dict[str, str]:
    """Overrides emptying every filter command the repository's config names.

    ``git diff`` pipes changed files through the ``clean`` filter their
    attributes select, a command taken from ``.git/config``, which the agent
    can write; it would run here, outside the sandbox. This narrows that to a
    config written between this read and the diff; running git itself in the
    sandbox would close it."""
    listed = await _git(
        top, "config", "--null", "--name-only", "--get-regexp", r"^filter\.", check=False
    )
    names = [os.fsdecode(raw) for raw in listed.output.split(b"\0") if raw]
    overrides: dict[str, str] = {}
    for name in names:
        driver, _, _ = name.rpartition(".")
        for key in ("clean", "smudge", "process"):
            overrides[f"{driver}.{key}"] = ""
        overrides[f"{driver}.required"] = "false"
    return overrides


async def _git(
    repo: Path,
    *args: str,
    limit: int | None = None,
    check: bool = True,
    config: dict[str, str] | None = None,
) -> _GitOutput:
    """Run git; with ``limit``, keep at most limit + 1 bytes but count them all."""
    proc = await asyncio.create_subprocess_exec(
        *_GIT,
        *args,
        cwd=repo,
        env=_env(repo, config or {}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr = asyncio.create_task(proc.stderr.read())
    kept = bytearray()
    total = 0
    try:
        while block := await proc.stdout.read(_READ_BLOCK):
            total += len(block)
            if limit is None:
                kept += block
            elif len(kept) <= limit:
                kept += block[: limit + 1 - len(kept)]
        code = await proc.wait()
        errors = await stderr
    except BaseException:
        stderr.cancel()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    if check and code != 0:
        message = errors.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args)} exited with {code}: {message}")
    return _GitOutput(code, bytes(kept), total, errors)


async def _git_text(repo: Path, *args: str) -> str:
    return (await _git(repo, *args)).output.decode("utf-8", errors="replace")


async def _git_optional(repo: Path, *args: str) -> str | None:
    """Stripped output, or None when git says "no such thing" (non-zero exit)."""
    result = await _git(repo, *args, check=False)
    if result.code != 0:
        return None
    return result.output.decode("utf-8", errors="replace").strip()


def _file_boundary(diff: bytes, cap: int) -> int:
    """Where to cut an oversized diff: before the last file that starts within
    the cap, else after the last whole line."""
    window = diff[:cap]
    boundary = window.rfind(b"\ndiff --git ")
    if boundary >= 0:
        return boundary + 1
    return window.rfind(b"\n") + 1


def _numstat_totals(raw: bytes) -> tuple[int, int, int]:
    """(additions, deletions, files) from ``--numstat -z``; binary files count 0/0."""
    additions = deletions = files = 0
    fields = raw.split(b"\0")
    index = 0
    while index < len(fields):
        record = fields[index]
        index += 1
        parts = record.split(b"\t", 2)
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        if not path:
            index += 2  # a rename: the old and new paths follow as their own fields
        additions += int(added) if added.isdigit() else 0
        deletions += int(deleted) if deleted.isdigit() else 0
        files += 1
    return additions, deletions, files


def _untracked_diff(repo: Path, paths: list[str], budget: int) -> _AddedFiles:
    """New-file diffs for untracked files while they fit in ``budget`` bytes;
    line counts cover every file. Blocking; run in a thread."""
    parts: list[bytes] = []
    used = omitted = lines = files = 0
    for path in sorted(paths):
        full = repo / path
        try:
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                content: bytes | None = os.fsencode(os.readlink(full))
                mode = "120000"
            elif stat.S_ISREG(info.st_mode):
                fits = used + info.st_size <= budget and not omitted
                content = full.read_bytes() if fits else None
                mode = "100755" if info.st_mode & stat.S_IXUSR else "100644"
            else:
                continue
            count, size = _count_lines(full) if content is None else _lines_in(content)
        except OSError:
            continue  # deleted or unreadable since git listed it
        files += 1
        lines += count
        entry = _new_file_entry(path, mode, content) if content is not None else b""
        if content is not None and not omitted and used + len(entry) <= budget:
            parts.append(entry)
            used += len(entry)
        else:
            omitted += len(entry) if entry else _entry_estimate(path, count, size)
    return _AddedFiles(b"".join(parts), omitted, lines, files)


def _entry_estimate(path: str, lines: int, size: int) -> int:
    """Roughly what a skipped file's entry would have taken: headers, plus one
    "+" per line for text (a non-empty file with no lines is binary)."""
    header = 3 * len(os.fsencode(path)) + 100
    return header + (size + lines if lines else 0)


def _lines_in(content: bytes) -> tuple[int, int]:
    """(lines as git counts them, byte size); a binary file has no lines."""
    if b"\0" in content[:_BINARY_SNIFF]:
        return 0, len(content)
    count = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    return count, len(content)


def _count_lines(path: Path) -> tuple[int, int]:
    """Like ``_lines_in`` for a file too large to hold in memory."""
    count = size = 0
    last = b""
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            if size == 0 and b"\0" in block[:_BINARY_SNIFF]:
                return 0, os.fstat(handle.fileno()).st_size
            count += block.count(b"\n")
            size += len(block)
            last = block[-1:]
    return count + (1 if last and last != b"\n" else 0), size


def _new_file_entry(path: str, mode: str, content: bytes) -> bytes:
    """The entry ``git diff`` would print had the file been added."""
    old, new = _quote("a/" + path), _quote("b/" + path)
    head = _raw(f"diff --git {old} {new}\nnew file mode {mode}\n")
    if not content:
        return head
    if b"\0" in content[:_BINARY_SNIFF]:
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
