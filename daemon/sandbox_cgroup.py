"""Control groups that bound a whole sandbox: how many processes it may hold and
how much memory all of them together may use.

The rlimits of ``Sandbox`` are per process (memory) or per user (processes), and
the kernel exempts root from RLIMIT_NPROC, so a server running as root has
nothing but the timeout between a fork bomb and the host's process table. A
pids (and memory) control group per command holds for every user.

Where the host offers a writable hierarchy (cgroup v1 ``pids``/``memory``
mounts, or a cgroup v2 subtree delegated to us), the server makes one parent
``agentgql-<pid>`` beside its own cgroup and, per command, a child ``sbx-<n>``
with the limits. A small host shell joins the child and then ``exec``\\ s
bubblewrap, so nothing of the command runs before it is inside. A reaper thread
removes each child once its processes are gone.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import shlex
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT_PREFIX = "agentgql-"
CHILD_PREFIX = "sbx-"
_CONTROLLERS = ("pids", "memory")
# Exit status of the joining shell when it could not enter the cgroup.
JOIN_FAILED = 125
# A command whose shell never joined (it was killed first) is released after this.
_JOIN_S = 60.0
_POLL_S = 0.05
_RMDIR_TRIES = 20


@dataclass(eq=False)
class SandboxCgroup:
    """One command's cgroup: a directory per hierarchy (v1) or a single one (v2)."""

    dirs: tuple[Path, ...]
    marker: Path
    created: float = field(default_factory=time.monotonic)
    joined: bool = False

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` behind a host shell that joins this cgroup first, then execs it."""
        joins = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        mark = shlex.quote(str(self.marker))
        # The shell exports the host's cwd as PWD; the sandbox must not see it.
        script = f'{joins} && : > {mark} && unset PWD OLDPWD && exec "$@"; exit {JOIN_FAILED}'
        return ["/bin/sh", "-c", script, "agentgql-sandbox", *argv]

    def processes(self) -> int:
        """How many processes are inside (the largest count over the hierarchies)."""
        counts = [0]
        for d in self.dirs:
            with contextlib.suppress(OSError):
                counts.append(len((d / "cgroup.procs").read_text().split()))
        return max(counts)

    def remove(self) -> bool:
        """Removes the directories, killing any process still inside; whether all went."""
        gone = True
        for d in self.dirs:
            gone = _remove_dir(d) and gone
        if gone:
            with contextlib.suppress(OSError):
                self.marker.unlink()
        return gone


def _remove_dir(directory: Path) -> bool:
    for _ in range(_RMDIR_TRIES):
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            _kill_inside(directory)
            time.sleep(_POLL_S)
    return False


def _kill_inside(directory: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in (directory / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), 9)


class CgroupHierarchy:
    """This server's parent cgroup(s), one per controller's hierarchy on v1."""

    def __init__(self, version: int, parents: dict[str, Path]) -> None:
        self.version = version
        self.parents = parents
        self._names = itertools.count(1)
        self._markers = Path(tempfile.mkdtemp(prefix="agentgql-cgroup-"))
        self._reaper = _Reaper()

    def describe(self) -> str:
        where = ", ".join(str(p) for p in sorted(set(self.parents.values())))
        return f"cgroup v{self.version} ({where})"

    def create(self, processes: int, memory_mb: int) -> SandboxCgroup:
        """A new child with the limits; raises OSError when the host refuses it."""
        name = f"{CHILD_PREFIX}{next(self._names)}"
        dirs: list[Path] = []
        cgroup = SandboxCgroup((), self._markers / name)
        try:
            for controller, parent in self.parents.items():
                parent.mkdir(exist_ok=True)  # v1: even if someone removed it meanwhile
                child = parent / name
                if child not in dirs:
                    child.mkdir()
                    dirs.append(child)
                    cgroup.dirs = tuple(dirs)
                if controller == "pids":
                    (child / "pids.max").write_text(str(processes))
                else:
                    self._limit_memory(child, memory_mb * 1024 * 1024)
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def _limit_memory(self, child: Path, limit: int) -> None:
        if self.version == 2:
            (child / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):  # without swap accounting there is no file
                (child / "memory.swap.max").write_text("0")
            return
        (child / "memory.limit_in_bytes").write_text(str(limit))
        with contextlib.suppress(OSError):  # only with swap accounting on
            (child / "memory.memsw.limit_in_bytes").write_text(str(limit))

    def release_when_empty(self, cgroup: SandboxCgroup) -> None:
        """Hands a started command's cgroup to the reaper."""
        self._reaper.add(cgroup)

    def close(self) -> None:
        """Removes what no process holds any more: at the server's exit."""
        self._reaper.sweep_now()
        for parent in set(self.parents.values()):
            _remove_parent(parent)
        shutil.rmtree(self._markers, ignore_errors=True)


class _Reaper:
    """One thread per server that removes each command's cgroup once it is empty.

    A thread, not a task: the cgroup must go even when the event loop that
    started the command has closed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: set[SandboxCgroup] = set()
        self._thread: threading.Thread | None = None

    def add(self, cgroup: SandboxCgroup) -> None:
        with self._cond:
            self._pending.add(cgroup)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agentgql-cgroup-reaper", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
            self.sweep_now()
            time.sleep(_POLL_S)

    def sweep_now(self) -> None:
        with self._cond:
            pending = list(self._pending)
        for cgroup in pending:
            if not cgroup.joined and cgroup.marker.exists():
                cgroup.joined = True
            inside = cgroup.processes()
            started = cgroup.joined or time.monotonic() - cgroup.created > _JOIN_S
            if inside == 0 and started and cgroup.remove():
                with self._cond:
                    self._pending.discard(cgroup)


def _remove_parent(parent: Path) -> None:
    with contextlib.suppress(OSError):
        for child in parent.glob(f"{CHILD_PREFIX}*"):
            _remove_dir(child)
        parent.rmdir()


def _own_path(controller: str | None) -> str:
    """This process's cgroup path in the hierarchy of ``controller`` (None: v2)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if (controller is None and names == "") or controller in names.split(","):
                return path.lstrip("/")
    return ""


def _base(mount: Path, controller: str | None) -> Path:
    own = mount / _own_path(controller)
    return own if own.is_dir() else mount


def sweep_dead(base: Path) -> None:
    """Removes the parents that servers which have since died left behind."""
    for parent in base.glob(f"{PARENT_PREFIX}*"):
        pid = parent.name.removeprefix(PARENT_PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove_parent(parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_parent(base: Path) -> Path:
    sweep_dead(base)
    parent = base / f"{PARENT_PREFIX}{os.getpid()}"
    parent.mkdir(exist_ok=True)
    return parent


def _find_v1() -> CgroupHierarchy | None:
    parents: dict[str, Path] = {}
    for controller in _CONTROLLERS:
        mount = CGROUP_ROOT / controller
        if not (mount / "cgroup.procs").is_file():
            continue
        try:
            parents[controller] = _make_parent(_base(mount, controller))
        except OSError:
            continue
    if "pids" not in parents:
        for parent in parents.values():
            _remove_parent(parent)
        return None
    return CgroupHierarchy(1, parents)


def _find_v2() -> CgroupHierarchy | None:
    if not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None
    base = _base(CGROUP_ROOT, None)
    try:
        offered = (base / "cgroup.controllers").read_text().split()
        wanted = [c for c in _CONTROLLERS if c in offered]
        if "pids" not in wanted:
            return None
        enabled = (base / "cgroup.subtree_control").read_text().split()
        missing = [c for c in wanted if c not in enabled]
        if missing:  # fails (EBUSY) unless the subtree is delegated to us
            (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))
        parent = _make_parent(base)
        (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
    except OSError:
        return None
    return CgroupHierarchy(2, {c: parent for c in wanted})


_lock = threading.Lock()
_found: list[CgroupHierarchy | None] = []


def hierarchy() -> CgroupHierarchy | None:
    """This server's cgroups, found (and made) once per process; None without any."""
    with _lock:
        if not _found:
            found = _find_v1() or _find_v2()
            if found is not None:
                atexit.register(found.close)
            _found.append(found)
        return _found[0]
