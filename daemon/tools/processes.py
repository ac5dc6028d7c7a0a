"""Shell commands the tools start, and the per-daemon table of background ones.

Each command runs as ``/bin/sh -c`` inside the daemon's ``Sandbox`` (bubblewrap,
unless the operator turned it off), in a session of its own, so it and everything
it spawns form one process group that can be stopped together; in the sandbox
its PID namespace also dies with it, so even a process that left the group can't
survive. When the command exits, whatever it left running is killed: a command
never outlives its call (foreground) or its table entry (background), and a
stray child can't hold the output pipe open forever.

Output is read by an asyncio protocol straight into a ``CappedOutput``, which
keeps only the head and the tail, so a chatty process costs bounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from daemon.sandbox import Sandbox
from daemon.tool_registry import ToolError

OUTPUT_LIMIT = 64 * 1024
# How long to wait for the last output once the group is dead, and for a killed
# process to be reaped; only a process that escaped its group can use them up.
_DRAIN_S = 2.0
_REAP_S = 5.0


class CappedOutput:
    """A process's combined stdout and stderr: its head and tail once over the cap."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self._head_limit = limit - limit // 2
        self._tail_limit = limit // 2
        self._head = bytearray()
        self._tail = bytearray()
        self.total_bytes = 0

    def append(self, data: bytes) -> None:
        self.total_bytes += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data and self._tail_limit:
            self._tail += data
            if len(self._tail) > 2 * self._tail_limit:  # trim in batches, not per chunk
                del self._tail[: -self._tail_limit]

    @property
    def omitted_bytes(self) -> int:
        return self.total_bytes - len(self._head) - min(len(self._tail), self._tail_limit)

    @property
    def truncated(self) -> bool:
        return self.omitted_bytes > 0

    def text(self) -> str:
        tail = bytes(self._tail[-self._tail_limit :]) if self._tail_limit else b""
        head = self._head.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail.decode("utf-8", errors="replace")
        marker = f"\n… {self.omitted_bytes} bytes omitted …\n"
        return head + marker + tail.decode("utf-8", errors="replace")


class _ShellProtocol(asyncio.SubprocessProtocol):
    def __init__(self, output: CappedOutput) -> None:
        loop = asyncio.get_running_loop()
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.pid: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport has the same methods but is no asyncio.SubprocessTransport.
        self.pid = cast(asyncio.SubprocessTransport, transport).get_pid()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        self.output.append(bytes(data))

    def process_exited(self) -> None:
        # The group outlives its leader only while members remain, so its id
        # can't have been reused yet: killing it here hits only our leftovers.
        if self.pid is not None:
            kill_group(self.pid, signal.SIGKILL)
        _settle(self.exited)

    def connection_lost(self, exc: Exception | None) -> None:
        _settle(self.exited)
        _settle(self.closed)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ShellProcess:
    """One ``/bin/sh -c`` command in its own process group, output captured.

    ``pid`` is the host pid of the group's leader: the outer ``bwrap`` when
    sandboxed, the shell otherwise.
    """

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _ShellProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.pid = transport.get_pid()
        self.output = protocol.output

    @classmethod
    async def start(
        cls,
        command: str,
        cwd: Path,
        output: CappedOutput,
        sandbox: Sandbox,
        *,
        writable: bool = True,
    ) -> ShellProcess:
        """Starts ``command`` in ``sandbox``; call ``sandbox.ready()`` first."""
        loop = asyncio.get_running_loop()
        with sandbox.launch(command, cwd, writable=writable) as launch:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ShellProtocol(output),
                *launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                pass_fds=launch.pass_fds,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(transport, protocol)

    @property
    def returncode(self) -> int | None:
        """The shell's exit status; ``-N`` when signal N killed it."""
        return self._transport.get_returncode()

    async def wait_exit(self, within_s: float | None) -> bool:
        """Whether the shell exited within ``within_s`` seconds."""
        return await _wait(self._protocol.exited, within_s)

    async def wait_output_closed(self, within_s: float = _DRAIN_S) -> bool:
        """Whether all output arrived (every writer closed the pipe) within ``within_s``."""
        return await _wait(self._protocol.closed, within_s)

    def kill(self) -> None:
        """SIGKILL the whole group at once, while its leader still holds the group id."""
        if self.returncode is None:
            kill_group(self.pid, signal.SIGKILL)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM the group, SIGKILL it after ``grace_s``, and release the pipe."""
        try:
            if self.returncode is None:
                kill_group(self.pid, signal.SIGTERM)
                if not await self.wait_exit(grace_s):
                    self.kill()
                    await self.wait_exit(_REAP_S)
            await self.wait_output_closed()
        finally:
            self.close()

    def close(self) -> None:
        self._transport.close()


async def _wait(future: asyncio.Future[None], within_s: float | None) -> bool:
    try:
        async with asyncio.timeout(within_s):
            await asyncio.shield(future)
    except TimeoutError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class BackgroundProcess:
    id: str
    chat_id: uuid.UUID
    command: str
    shell: ShellProcess


class ProcessTable:
    """The daemon's background processes, each visible only to the chat that started it.

    The daemon calls ``kill_chat`` when a chat's turn ends and ``close_all`` on
    shutdown; entries stay (with their output) until then.
    """

    def __init__(
        self,
        *,
        sandbox: Sandbox | None = None,
        max_running_per_chat: int = 8,
        output_limit: int = OUTPUT_LIMIT,
        stop_grace_s: float = 2.0,
    ) -> None:
        self.sandbox = sandbox or Sandbox()
        self.max_running_per_chat = max_running_per_chat
        self.output_limit = output_limit
        self.stop_grace_s = stop_grace_s
        self._processes: dict[str, BackgroundProcess] = {}
        self._ids = itertools.count(1)

    async def start(
        self, chat_id: uuid.UUID, command: str, cwd: Path, *, writable: bool = True
    ) -> BackgroundProcess:
        running = [p for p in self.for_chat(chat_id) if p.shell.returncode is None]
        if len(running) >= self.max_running_per_chat:
            raise ToolError(
                f"this chat already runs {len(running)} background processes, the most "
                f"allowed; stop one with process_output (stop: true) first. Running: "
                + ", ".join(p.id for p in running)
            )
        shell = await self.spawn(command, cwd, CappedOutput(self.output_limit), writable=writable)
        process = BackgroundProcess(
            id=f"bg-{next(self._ids)}", chat_id=chat_id, command=command, shell=shell
        )
        self._processes[process.id] = process
        return process

    async def spawn(
        self, command: str, cwd: Path, output: CappedOutput, *, writable: bool = True
    ) -> ShellProcess:
        """Starts ``command`` in the sandbox, or says why there is none to run it in.

        ``writable=False`` mounts the workspace read-only (unsandboxed, it is not).
        """
        await self.sandbox.ready()
        return await ShellProcess.start(command, cwd, output, self.sandbox, writable=writable)

    def get(self, chat_id: uuid.UUID, process_id: str) -> BackgroundProcess:
        process = self._processes.get(process_id)
        if process is None or process.chat_id != chat_id:
            raise ToolError(
                f"unknown process {process_id!r}; use the processId that execute returned "
                "with background: true in this chat"
            )
        return process

    def for_chat(self, chat_id: uuid.UUID) -> list[BackgroundProcess]:
        return [p for p in self._processes.values() if p.chat_id == chat_id]

    async def stop(self, process: BackgroundProcess) -> None:
        """Stops the process but keeps its entry, so its output can still be read."""
        await process.shell.stop(self.stop_grace_s)

    async def kill_chat(self, chat_id: uuid.UUID) -> None:
        """Stops and forgets every background process of ``chat_id``."""
        await self._remove([p.id for p in self.for_chat(chat_id)])

    async def close_all(self) -> None:
        await self._remove(list(self._processes))

    async def _remove(self, ids: list[str]) -> None:
        processes = [self._processes.pop(i) for i in ids]
        await asyncio.gather(*(self.stop(p) for p in processes))
