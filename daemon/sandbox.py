"""The sandbox every command a tool starts runs in.

The model's commands come from whatever a member typed, so they run as if
hostile. With bubblewrap (the default) a command sees the chat's workspace at
``WORKSPACE_MOUNT``, its only writable path besides a small private ``/tmp``;
``/usr`` and a few harmless ``/etc`` files read-only; nothing else of the host:
not the data dir, the secret key, the database socket or other workspaces. It
gets its own user, PID, IPC, UTS, cgroup and network namespaces (the network
only when the operator allows it), an unprivileged uid without capabilities,
no further user namespaces, and rlimits on CPU time, memory, processes, file
size and open files; where the host lets us, also in a control group that caps
its processes and memory as a whole (``sandbox_cgroup``). Killing the outer
``bwrap`` kills the sandbox's init (``--die-with-parent``) and with it every
process of its PID namespace, whatever they did to their process groups.

``none`` runs commands as the server's own user on the host: only for a
single trusted user, never for a shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from daemon import sandbox_cgroup
from daemon.sandbox_cgroup import CgroupHierarchy
from daemon.tool_registry import ToolError
from db.vocabulary import WORKSPACE_MOUNT

log = logging.getLogger(__name__)

SandboxMode = Literal["bwrap", "none"]
SHELL = "/bin/sh"
# Pagers and fancy terminals would wait for a keypress no one will press.
ENV_OVERRIDES = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat"}
# Unsandboxed, the server's own secrets still never reach the model's commands.
_PRIVATE_PREFIXES = ("AGENTGQL_", "PG")
_PRIVATE_NAMES = frozenset({"DATABASE_URL", "BROADCAST_URL", "REDIS_URL"})
# Inside the sandbox: a fixed, minimal environment (bwrap's own environment is
# readable there as the init's /proc/1/environ, so it gets this one too).
SANDBOX_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "USER": "agent",
    "LOGNAME": "agent",
    "SHELL": SHELL,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    **ENV_OVERRIDES,
}
SANDBOX_UID = 1000
_PASSWD = b"root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:1000:1000:agent:/tmp:/bin/sh\n"
_GROUP = b"root:x:0:\nagent:x:1000:\n"
_HOSTS = b"127.0.0.1 localhost\n::1 localhost\n"
# /etc entries that hold no secrets and that common tools need: the dynamic
# linker's cache, Debian's alternatives (/usr/bin/awk links through them), zones.
_ETC = (
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "nsswitch.conf",
    "host.conf",
    "fonts",
    "magic",
    "magic.mime",
    "mime.types",
)
_ETC_GLOBS = ("java-*",)
# Only useful (and only bound) when the network is on.
_ETC_NETWORK = (
    "resolv.conf",
    "hosts",
    "gai.conf",
    "services",
    "protocols",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
)
_ROOT_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_PROBE_S = 15.0
# Hardening newer bubblewraps offer (0.8: --disable-userns); older ones run without.
_OPTIONAL_FLAGS = frozenset({"--disable-userns", "--size"})
INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap) for the shell tool, "
    "or set AGENTGQL_SANDBOX=none (unsafe)"
)


def command_env() -> dict[str, str]:
    """Unsandboxed: the daemon's environment minus its secrets, plus the overrides."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if k not in _PRIVATE_NAMES and not k.startswith(_PRIVATE_PREFIXES)
    }
    return {**kept, **ENV_OVERRIDES}


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-process rlimits, except ``processes``: the sandbox's own user namespace
    makes RLIMIT_NPROC count only its processes. The kernel exempts host root
    from that one, so with a cgroup ``processes`` and ``memory_mb`` also bound
    the whole sandbox."""

    cpu_s: int = 600
    memory_mb: int = 4096  # RLIMIT_DATA: heap and private writable mappings
    processes: int = 256
    file_mb: int = 2048
    open_files: int = 1024
    tmp_mb: int = 512


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    mode: SandboxMode = "bwrap"
    network: bool = False
    limits: SandboxLimits = field(default_factory=SandboxLimits)


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one command; ``pass_fds`` are closed once it has started."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()


class Sandbox:
    """Builds the command line for each command and says whether it can run at all.

    Availability is probed once, with a real sandboxed command; until it passes,
    the shell tools refuse with a reason the model can pass on.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        bwrap: str | None = None,
        prlimit: str | None = None,
    ) -> None:
        self.settings = settings or SandboxSettings()
        self.bwrap = bwrap or shutil.which("bwrap")
        self.prlimit = prlimit or shutil.which("prlimit")
        self._problem: str | None = None
        self._probed = False
        self._lock = asyncio.Lock()
        self._fixed = self._fixed_args(_OPTIONAL_FLAGS)
        self.cgroups: CgroupHierarchy | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.mode == "bwrap"

    async def announce(self) -> None:
        """Logs at start what the shell tool will do, loudly when it is unsafe or off."""
        if not self.enabled:
            log.warning(
                "AGENTGQL_SANDBOX=none: the model's commands run unsandboxed as the "
                "server's user and can read its data dir and secret key; unsafe unless "
                "every member is trusted"
            )
            return
        problem = await self.problem()
        if problem is not None:
            log.warning("no usable sandbox (%s): execute is disabled; %s", problem, INSTALL_HINT)
        elif self.cgroups is not None:
            limits = self.settings.limits
            log.info(
                "sandbox: each command is limited to %d processes and %d MiB in all by %s",
                limits.processes,
                limits.memory_mb,
                self.cgroups.describe(),
            )
        elif os.geteuid() == 0:
            # RLIMIT_NPROC counts per user and the kernel exempts root (the sandbox's
            # uid maps to it): without a cgroup only the timeout stops a fork bomb.
            log.warning(
                "sandbox: processes are limited only by RLIMIT_NPROC, which the kernel "
                "ignores for root; run agentgql as an ordinary user or give it a "
                "delegated cgroup"
            )
        else:
            log.info(
                "sandbox: no writable cgroup; processes are limited by RLIMIT_NPROC and "
                "memory per process by RLIMIT_DATA"
            )

    async def ready(self) -> None:
        """Raises the ``ToolError`` the model reads when commands can't run here."""
        problem = await self.problem()
        if problem is not None:
            raise ToolError(
                f"execute is unavailable on this server: commands run only inside a "
                f"sandbox and none is usable here ({problem}). Work with the file tools "
                f"instead, and tell the user that the server's operator must {INSTALL_HINT}"
            )

    async def problem(self) -> str | None:
        """Why sandboxed commands can't run, or None (also when sandboxing is off)."""
        if not self.enabled:
            return None
        async with self._lock:
            if not self._probed:
                self._problem = await self._probe()
                self._probed = True
        return self._problem

    @contextlib.contextmanager
    def launch(self, command: str, workspace: Path, *, writable: bool = True) -> Iterator[Launch]:
        """The argv, cwd and environment for the shell ``command`` in ``workspace``."""
        with self.launch_argv([SHELL, "-c", command], workspace, writable=writable) as launch:
            yield launch

    @contextlib.contextmanager
    def launch_argv(
        self,
        argv: Sequence[str],
        workspace: Path,
        *,
        cwd: Path | None = None,
        writable: bool = True,
    ) -> Iterator[Launch]:
        """``argv`` in ``workspace``, started in ``cwd`` (a directory inside it).

        ``writable=False`` binds the workspace read-only: for the server's own
        programs (git) reading what the model wrote, whose configuration it may
        have planted there.
        """
        start = cwd or workspace
        if not self.enabled:
            yield Launch(list(argv), start, command_env())
            return
        relative = start.relative_to(workspace).as_posix()
        inside = WORKSPACE_MOUNT if relative == "." else f"{WORKSPACE_MOUNT}/{relative}"
        files: dict[str, bytes] = {"/etc/passwd": _PASSWD, "/etc/group": _GROUP}
        if not self.settings.network:
            files["/etc/hosts"] = _HOSTS
        fds: list[int] = []
        cgroup = self._cgroup()
        try:
            data_args: list[str] = []
            for path, content in files.items():
                read_end, write_end = os.pipe()
                fds.append(read_end)
                try:
                    os.write(write_end, content)  # far below a pipe's buffer
                finally:
                    os.close(write_end)
                data_args += ["--ro-bind-data", str(read_end), path]
            # The source is the cwd bwrap starts in, so its command line, which the
            # sandbox can read, doesn't name the host's workspace path.
            bind = ["--bind" if writable else "--ro-bind", ".", WORKSPACE_MOUNT, "--chdir", inside]
            full = [*self._fixed, *data_args, *bind, *self._limit_args(), *argv]
            if cgroup is not None:
                full = cgroup.wrap(full)
            yield Launch(full, workspace, dict(SANDBOX_ENV), tuple(fds))
        except BaseException:
            if cgroup is not None:  # nothing started in it
                cgroup.remove()
            raise
        else:
            if cgroup is not None and self.cgroups is not None:
                self.cgroups.release_when_empty(cgroup)
        finally:
            for fd in fds:
                os.close(fd)

    def _cgroup(self) -> sandbox_cgroup.SandboxCgroup | None:
        """A fresh cgroup for one command; refuses rather than run it unbounded."""
        if self.cgroups is None:
            return None
        limits = self.settings.limits
        try:
            return self.cgroups.create(limits.processes, limits.memory_mb)
        except OSError as exc:
            raise ToolError(
                f"the sandbox's control group could not be made ({exc.strerror or exc}); "
                "try again, and tell the user if it keeps failing"
            ) from None

    def _fixed_args(self, optional: frozenset[str]) -> list[str]:
        """Everything but the per-command files, the workspace and the command;
        of ``_OPTIONAL_FLAGS`` only those in ``optional`` (what this bwrap knows)."""
        network = ["--share-net"] if self.settings.network else []
        args = [
            self.bwrap or "bwrap",
            "--unshare-all",
            "--unshare-user",
            *network,
            *(["--disable-userns"] if "--disable-userns" in optional else []),
            "--die-with-parent",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for name in _ROOT_DIRS:
            path = Path("/", name)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        etc = list(_ETC) + (list(_ETC_NETWORK) if self.settings.network else [])
        etc += sorted(p.name for pattern in _ETC_GLOBS for p in Path("/etc").glob(pattern))
        for name in etc:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        tmp_bytes = self.settings.limits.tmp_mb * 1024 * 1024
        size = ["--size", str(tmp_bytes)] if "--size" in optional else []
        args += ["--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/tmp"]
        return args

    def _limit_args(self) -> list[str]:
        limits = self.settings.limits
        mib = 1024 * 1024
        return [
            "--",
            self.prlimit or "prlimit",
            f"--cpu={limits.cpu_s}",
            f"--data={limits.memory_mb * mib}",
            f"--nproc={limits.processes}",
            f"--fsize={limits.file_mb * mib}",
            f"--nofile={limits.open_files}",
            "--core=0",
        ]

    async def _known_flags(self) -> frozenset[str]:
        """Which of ``_OPTIONAL_FLAGS`` this bwrap's ``--help`` lists."""
        assert self.bwrap is not None
        process = await asyncio.create_subprocess_exec(
            self.bwrap,
            "--help",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(_PROBE_S):
            usage, _ = await process.communicate()
        words = set(usage.decode("utf-8", errors="replace").split())
        return frozenset(flag for flag in _OPTIONAL_FLAGS if flag in words)

    async def _probe(self) -> str | None:
        if self.bwrap is None or not os.access(self.bwrap, os.X_OK):
            return "bubblewrap (bwrap) is not installed"
        if self.prlimit is None or not self.prlimit.startswith(("/usr/", "/bin/")):
            return "prlimit (util-linux) is not installed under /usr"
        try:
            self._fixed = self._fixed_args(await self._known_flags())
        except (OSError, TimeoutError) as exc:
            return f"bubblewrap could not start: {exc}"
        self.cgroups = sandbox_cgroup.hierarchy()
        problem = await self._test_run()
        if problem is not None and self.cgroups is not None:
            log.warning(
                "sandbox: commands could not join %s (%s); running them without it",
                self.cgroups.describe(),
                problem,
            )
            self.cgroups = None
            problem = await self._test_run()
        return problem

    async def _test_run(self) -> str | None:
        """Why a real sandboxed command fails here, or None."""
        with tempfile.TemporaryDirectory(prefix="agentgql-probe-") as workspace:
            check = f'test "$(pwd)" = {WORKSPACE_MOUNT} && : > probe && echo ok'
            try:
                with self.launch(check, Path(workspace)) as launch:
                    process = await asyncio.create_subprocess_exec(
                        *launch.argv,
                        cwd=launch.cwd,
                        env=launch.env,
                        pass_fds=launch.pass_fds,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.STDOUT,
                        start_new_session=True,
                    )
                async with asyncio.timeout(_PROBE_S):
                    out, _ = await process.communicate()
            except TimeoutError:
                process.kill()
                await process.wait()
                return f"bubblewrap's test run did not finish within {_PROBE_S:g}s"
            except OSError as exc:
                return f"bubblewrap could not start: {exc.strerror or exc}"
            said = out.decode("utf-8", errors="replace").strip()
            if process.returncode != 0 or said != "ok":  # "ok" only after writing a file
                first = said.splitlines()[0] if said else f"exit status {process.returncode}"
                return f"bubblewrap's test run failed: {first[:200]}"
        return None
