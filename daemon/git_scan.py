"""A workspace's git repositories and what each has changed since its last commit.

A chat's workspace holds one or more repositories; the UI shows, per
repository, the working tree against HEAD including untracked files, as one
unified diff. The diff is capped so a generated or vendored tree cannot flood
the database, while the line and file counts still cover the whole change set.

A workspace is written by agents, ``.git/config`` included, and git runs
commands a repository's configuration names (``core.fsmonitor``, filters,
external diff drivers, those of nested repositories...). So git runs inside
the same sandbox as the agent's own commands: the workspace mounted read-only
at ``WORKSPACE_MOUNT``, no network, nothing else of the host, an unprivileged
uid and the sandbox's rlimits; whatever a configuration runs, runs there. One
sandboxed shell per repository runs all of a scan's git commands. Git is also
still told not to prompt, not to run fsmonitor, hooks, external diff or
textconv commands, not to read the system or user configuration, not to look
for a repository above the directory it scans, and not to take optional locks.

With ``AGENTGQL_SANDBOX=none`` git runs on the host as the server's user
(unsafe: an agent can run commands there). When sandboxing is on but no
sandbox works here, nothing is scanned: git never runs on the host unasked.

Roots leave here as the in-sandbox paths clients see (``/workspace/app``),
never the host directory; a repository whose work tree or git directory lies
outside the workspace is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import posixpath
import signal
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from daemon.sandbox import SHELL, Sandbox
from daemon.untracked_diff import AddedFiles, untracked_diff
from db.git_snapshots import RepoSnapshot, is_sandbox_root, sandbox_root
from db.vocabulary import WORKSPACE_MOUNT

log = logging.getLogger(__name__)

MAX_DIFF_BYTES = 3 * 1024 * 1024
# The tree with no entries: what an unborn branch's working tree is compared to.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Directories never searched for repositories.
SKIP_DIRS = frozenset({".git", "node_modules", ".venv"})
# Bounds the walk of a wide workspace; a repository deeper or later is not shown.
MAX_DIRS_WALKED = 5000
SCAN_CONCURRENCY = 4
# A repository's whole scan; a configuration that makes git hang is killed.
SCAN_TIMEOUT_S = 60.0
# Bounds each listing the scan reads whole (numstat, untracked files, ...).
_MAX_LISTING = 256 * 1024 * 1024
_MAX_STDERR = 16 * 1024
_READ_BLOCK = 64 * 1024

_GIT_CONFIG = (
    "core.quotepath=off",
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "protocol.allow=never",
)
# Nested repositories are scanned on their own: their work trees are neither
# diffed nor checked for changes here (either would run git inside them).
_DIFF = (
    "diff --no-color --no-ext-diff --no-textconv --ignore-submodules=dirty"
    " --submodule=short -M --src-prefix=a/ --dst-prefix=b/"
)
_LISTINGS = ("loc", "branch", "origin", "numstat", "others")
# $1: the directory to scan; $2: the workspace as git names it; $3: an empty
# scratch directory. Prints `wc -c` of the listings (one line each, then a
# total), the listings, then the diff: the only unbounded output, so streamed
# last. Exit status 121-126: a step before the diff failed (stderr says why).
# Independent git commands run side by side: a scan is three git steps deep.
_SCRIPT = f"""
set -u
dir=$1 prefix=$2 T=$3
g() {{ git {" ".join(f"-c {c}" for c in _GIT_CONFIG)} "$@"; }}
cd -- "$dir" || exit 121
g rev-parse --path-format=absolute --show-toplevel --absolute-git-dir --git-common-dir \\
  >"$T/loc" & loc=$!
g rev-parse --verify --quiet 'HEAD^{{commit}}' >/dev/null & head=$!
g symbolic-ref --quiet --short HEAD >"$T/branch" &
g config --get remote.origin.url >"$T/origin" &
wait $loc || exit 122
while IFS= read -r p; do
  case $p in "$prefix" | "$prefix"/*) ;; *) echo "$p lies outside the workspace" >&2; exit 123;;
  esac
done <"$T/loc"
IFS= read -r top <"$T/loc"
base={EMPTY_TREE}
wait $head && base=HEAD
cd -- "$top" || exit 121
g {_DIFF} --numstat -z "$base" -- >"$T/numstat" & numstat=$!
g ls-files -z --others --exclude-standard >"$T/others" & others=$!
wait $numstat || exit 124
wait $others || exit 125
wait
(cd -- "$T" && wc -c {" ".join(_LISTINGS)} && cat {" ".join(_LISTINGS)}) || exit 126
g {_DIFF} "$base" --
"""


class GitError(RuntimeError):
    """A git command failed; the repository is skipped for this scan."""


class GitScanUnavailable(RuntimeError):
    """Sandboxing is on but no sandbox works here: git is not run at all."""


@dataclass(frozen=True)
class _ScanOutput:
    listings: dict[str, bytes]
    diff: bytes
    diff_total: int


class GitScanner:
    """Scans workspaces with git run in ``sandbox`` (see the module docstring)."""

    def __init__(self, sandbox: Sandbox, *, timeout_s: float = SCAN_TIMEOUT_S) -> None:
        self.sandbox = sandbox
        self.timeout_s = timeout_s

    async def unavailable(self) -> str | None:
        """Why nothing can be scanned here, or None."""
        problem = await self.sandbox.problem()
        if problem is None:
            return None
        return f"git scans run only in the sandbox and none is usable here ({problem})"

    async def scan_workspace(self, workspace: Path, max_depth: int = 3) -> list[RepoSnapshot]:
        """Every readable repository in the workspace, sorted by root; a repository
        that fails to scan is logged and left out rather than failing the rest.
        GitScanUnavailable when no sandbox works and sandboxing is on."""
        reason = await self.unavailable()
        if reason is not None:
            raise GitScanUnavailable(reason)
        roots = await asyncio.to_thread(find_repos, workspace, max_depth)
        limit = asyncio.Semaphore(SCAN_CONCURRENCY)

        async def scan(root: Path) -> RepoSnapshot | None:
            async with limit:
                try:
                    return await self.scan_repo(root, workspace)
                except GitScanUnavailable:
                    raise
                except Exception:
                    log.warning("scanning the git repository at %s failed", root, exc_info=True)
                    return None

        snapshots = await asyncio.gather(*(scan(root) for root in roots))
        unique = {snapshot.root: snapshot for snapshot in snapshots if snapshot is not None}
        return [unique[root] for root in sorted(unique)]

    async def scan_repo(self, root: Path, workspace: Path) -> RepoSnapshot:
        """The branch, origin and working-tree diff of the repository at ``root``
        (a directory inside ``workspace``); GitError when it fails or its work
        tree or git directories lie outside the workspace."""
        output = await self._run(root, workspace)
        listings = output.listings
        paths = os.fsdecode(listings["loc"]).split("\n")[:3]
        top = self._root(workspace, paths)
        diff, omitted = output.diff, output.diff_total - len(output.diff)
        if omitted:
            cut = _file_boundary(diff, MAX_DIFF_BYTES)
            diff, omitted = diff[:cut], output.diff_total - cut
        additions, deletions, changed = _numstat_totals(listings["numstat"])
        # Nested repositories show up as "dir/"; they are scanned on their own.
        others = listings["others"].split(b"\0")
        untracked = [os.fsdecode(p) for p in others if p and not p.endswith(b"/")]
        budget = 0 if omitted else MAX_DIFF_BYTES - len(diff)
        below = top[len(WORKSPACE_MOUNT) :].strip("/")
        parts = below.split("/") if below else []
        added = await asyncio.to_thread(_untracked, workspace, parts, untracked, budget)
        diff += added.text
        omitted += added.omitted
        if omitted:
            diff += f"# diff too large: {omitted} bytes omitted\n".encode()
        branch = _text(listings["branch"])
        origin = _text(listings["origin"])
        return RepoSnapshot(
            root=top,
            branch=branch or None,
            remote_origin=origin or None,
            unified_diff=diff.decode("utf-8", errors="replace"),
            removed=False,
            additions=additions + added.lines,
            deletions=deletions,
            changed_files=changed + added.files,
        )

    def _root(self, workspace: Path, paths: list[str]) -> str:
        """The work tree's in-sandbox root, once every located path is checked
        to lie inside the workspace."""
        if len(paths) != 3:
            raise GitError(f"git did not locate the repository: {paths!r}")
        roots = []
        for path in paths:
            if self.sandbox.enabled:
                inside = posixpath.normpath(path)
                if inside != path or not is_sandbox_root(inside):
                    raise GitError(f"{path} lies outside the workspace")
                roots.append(inside)
                continue
            try:
                roots.append(sandbox_root(workspace, path))
            except ValueError:
                raise GitError(f"{path} lies outside the workspace {workspace}") from None
        return roots[0]

    async def _run(self, root: Path, workspace: Path) -> _ScanOutput:
        """The scan script's output for ``root``: in the sandbox, or on the host
        when sandboxing is off."""
        relative = root.relative_to(workspace).as_posix()
        if self.sandbox.enabled:
            reason = await self.unavailable()
            if reason is not None:
                raise GitScanUnavailable(reason)
            inside = WORKSPACE_MOUNT if relative == "." else f"{WORKSPACE_MOUNT}/{relative}"
            # The sandbox's /tmp is its own, empty, and gone when it exits.
            argv = [SHELL, "-c", _SCRIPT, "agentgql-git-scan", inside, WORKSPACE_MOUNT, "/tmp"]
            with self.sandbox.launch_argv(argv, workspace, writable=False) as launch:
                env = {**launch.env, **_git_env(posixpath.dirname(inside), home="/tmp")}
                process = await _start(launch.argv, launch.cwd, env, launch.pass_fds)
            return await self._finish(process)
        with tempfile.TemporaryDirectory(
            prefix="agentgql-git-scan-", ignore_cleanup_errors=True
        ) as scratch:
            argv, git_env = _on_host(root, workspace, scratch)
            with self.sandbox.launch_argv(argv, workspace) as launch:
                kept = {k: v for k, v in launch.env.items() if not k.startswith("GIT_")}
                env = {**kept, **git_env}
                process = await _start(launch.argv, launch.cwd, env, launch.pass_fds)
            return await self._finish(process)

    async def _finish(self, process: asyncio.subprocess.Process) -> _ScanOutput:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await _collect(process)
        except BaseException:
            _kill(process)
            with contextlib.suppress(Exception):
                await asyncio.shield(process.wait())
            raise


def _on_host(root: Path, workspace: Path, scratch: str) -> tuple[list[str], dict[str, str]]:
    """The script's argv and git's environment for a scan on the host, where
    git names the workspace by its real path."""
    real = os.path.realpath(root)
    argv = [SHELL, "-c", _SCRIPT, "agentgql-git-scan", real, os.path.realpath(workspace), scratch]
    return argv, _git_env(os.path.dirname(real), home=_empty_home())


def _git_env(ceiling: str, *, home: str) -> dict[str, str]:
    """What git needs set whichever side it runs on: no prompts, no optional
    locks (they would also wake the watcher with the scan's own writes), no
    configuration but the repository's own and the command line's, and no
    repository above the scanned directory (above a workspace lie the
    server's own directories)."""
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": ceiling,
        "HOME": home,
        "XDG_CONFIG_HOME": home,
    }


@functools.cache
def _empty_home() -> str:
    """An empty directory for HOME, so no user configuration reaches an
    unsandboxed git."""
    return tempfile.mkdtemp(prefix="agentgql-git-home-")


async def _start(
    argv: list[str], cwd: Path, env: dict[str, str], pass_fds: tuple[int, ...]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        pass_fds=pass_fds,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


def _kill(process: asyncio.subprocess.Process) -> None:
    """The whole session: the sandbox (whose init dies with bwrap) or, on the
    host, the shell and its gits."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _collect(process: asyncio.subprocess.Process) -> _ScanOutput:
    """The listings and the capped diff the script printed; GitError when it failed."""
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(_capped(process.stderr, _MAX_STDERR))
    try:
        listings = await _listings(process.stdout)
        kept = bytearray()
        total = 0
        limit = MAX_DIFF_BYTES
        if listings is not None:
            while block := await process.stdout.read(_READ_BLOCK):
                total += len(block)
                if len(kept) <= limit:
                    kept += block[: limit + 1 - len(kept)]
        code = await process.wait()
        errors = await stderr
    finally:
        stderr.cancel()
    if code != 0 or listings is None:
        message = errors.decode("utf-8", errors="replace").strip()
        raise GitError(f"the git scan exited with {code}: {message}")
    return _ScanOutput(listings, bytes(kept), total)


async def _listings(stdout: asyncio.StreamReader) -> dict[str, bytes] | None:
    """The listings ahead of the diff, sized by ``wc -c``; None when the script
    printed none (it failed before)."""
    sizes: list[int] = []
    for name in (*_LISTINGS, "total"):
        try:
            line = await stdout.readline()
        except ValueError:  # a line over the reader's limit: not wc's
            raise GitError("the git scan printed no listing sizes") from None
        if not line and not sizes:
            return None
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit() or fields[1] != name.encode():
            raise GitError(f"the git scan printed no size of its {name}: {line[:200]!r}")
        sizes.append(int(fields[0]))
    listings: dict[str, bytes] = {}
    for name, size in zip(_LISTINGS, sizes, strict=False):
        if size > _MAX_LISTING:
            raise GitError(f"the git scan's {name} listing is too large: {size} bytes")
        try:
            listings[name] = await stdout.readexactly(size)
        except asyncio.IncompleteReadError:
            raise GitError(f"the git scan's {name} listing was cut short") from None
    return listings


async def _capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Everything from ``stream``, keeping the first ``limit`` bytes."""
    kept = bytearray()
    while block := await stream.read(_READ_BLOCK):
        kept += block[: max(0, limit - len(kept))]
    return bytes(kept)


def _untracked(workspace: Path, parts: list[str], paths: list[str], budget: int) -> AddedFiles:
    """Blocking; run in a thread."""
    fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return untracked_diff(fd, parts, paths, budget)
    finally:
        os.close(fd)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").strip()


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
